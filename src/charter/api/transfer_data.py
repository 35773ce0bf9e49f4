"""Transfer routes for data: chunks, dataset uploads and checkouts, drift inputs, model weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from charter.api import frames
from charter.api.auth import caller
from charter.api.transfer import BodyTooLarge, Strict, json_result, read_body, too_large
from charter.data.chunking import MAX_CHUNK
from charter.service import blob_transfer, dataset_upload
from charter.service.registry import Registry

Caller = Annotated[Registry, Depends(caller)]
Digest = Annotated[str, Path(description="BLAKE3 hex digest of the object", min_length=1, max_length=200)]
Ref = Annotated[str, Path(description="a dataset or model reference", min_length=1, max_length=300)]
Name = Annotated[str, Path(description="a dataset or model name", min_length=1, max_length=200)]
_STREAM_PIECE = 256 * 1024


class MissingRequest(Strict):
    digests: list[str] = Field(max_length=blob_transfer.MAX_DIGESTS)


class DatasetUploadCheck(Strict):
    role: str
    derived_from: str | None = None


class DatasetUpload(Strict):
    manifest: dict[str, Any]
    role: str
    sources: list[str] = Field(default_factory=list)
    derived_from: str | None = None
    message: str = ""


class ModelUploadCheck(Strict):
    version: str | None = None


class ModelUpload(Strict):
    spec: dict[str, Any]
    weights: dict[str, Any]
    version: str | None = None


class DriftRequest(Strict):
    against: str = Field(min_length=1, max_length=4096)
    since: datetime | None = None


def build_data_router() -> APIRouter:
    router = APIRouter(tags=["transfer"])

    @router.post("/blobs/missing", summary="Which of these chunks the server lacks")
    def missing(body: MissingRequest, registry: Caller) -> Response:
        return json_result({"missing": blob_transfer.missing(registry, body.digests)})

    @router.put(
        "/blobs/{digest}",
        summary="Send one chunk (checked against its digest; at most one chunk long)",
        status_code=201,
        responses={
            200: {"description": "the server had the chunk already"},
            413: {"description": "too long"},
        },
    )
    async def put_blob(digest: Digest, request: Request, registry: Caller) -> Response:
        blob_transfer.check_digest(digest)
        await run_in_threadpool(blob_transfer.authorize_upload, registry)
        try:
            data = await read_body(request, MAX_CHUNK, "a chunk")
        except BodyTooLarge as exc:
            return too_large(exc)
        created = await run_in_threadpool(blob_transfer.put_chunk, registry, digest, data)
        return json_result({"digest": digest, "stored": created}, 201 if created else 200)

    @router.post(
        "/blobs/batch",
        summary="Send several chunks in one request (see charter.api.frames for the body)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def put_blobs(request: Request, registry: Caller) -> Response:
        await run_in_threadpool(blob_transfer.authorize_upload, registry)
        limit = blob_transfer.MAX_BATCH_BYTES + blob_transfer.MAX_BATCH_CHUNKS * frames.HEADER
        try:
            body = await read_body(request, limit, "a batch of chunks")
        except BodyTooLarge as exc:
            return too_large(exc)
        chunks = frames.decode(body, max_chunks=blob_transfer.MAX_BATCH_CHUNKS)
        stored = await run_in_threadpool(blob_transfer.put_chunks, registry, chunks)
        return json_result({"chunks": len(chunks), "stored": stored})

    @router.get(
        "/blobs/{digest}",
        summary="Read a stored object (a chunk, a manifest, row fingerprints)",
        response_class=StreamingResponse,
    )
    def get_blob(digest: Digest, registry: Caller) -> Response:
        handle = blob_transfer.open_blob(registry, digest)

        def pieces() -> Iterator[bytes]:
            with handle:
                while piece := handle.read(_STREAM_PIECE):
                    yield piece

        headers = {"ETag": f'"{digest}"', "Cache-Control": "private, max-age=31536000, immutable"}
        return StreamingResponse(pieces(), media_type="application/octet-stream", headers=headers)

    @router.post("/datasets/{name}/uploads/check", summary="May this dataset upload go ahead?")
    def check_dataset_upload(name: Name, body: DatasetUploadCheck, registry: Caller) -> Response:
        dataset_upload.check_dataset_upload(registry, name, body.role, body.derived_from)
        return Response(status_code=204)

    @router.post(
        "/datasets/{name}/uploads", summary="Commit an uploaded snapshot as a version", status_code=201
    )
    def commit_dataset_upload(name: Name, body: DatasetUpload, registry: Caller) -> Response:
        manifest = dataset_upload.parse_manifest(body.manifest)
        result = dataset_upload.commit_dataset_upload(
            registry,
            name,
            manifest,
            role=body.role,
            sources=body.sources,
            derived_from=body.derived_from,
            message=body.message,
        )
        return json_result(result, 201 if result.created else 200)

    @router.get("/dataset-versions/{ref}/manifest", summary="The manifest of a version (for checkout)")
    def manifest(ref: Ref, registry: Caller) -> Response:
        found, document = dataset_upload.version_manifest(registry, ref)
        return json_result(
            {"ref": found, "digest": document.digest, "manifest": json.loads(document.to_bytes())}
        )

    @router.post("/dataset-versions/{ref}/drift", summary="Drift against a dataset version or slot inputs")
    def drift(ref: Ref, body: DriftRequest, registry: Caller) -> Response:
        from charter.service.drift_upload import drift_named

        return json_result(drift_named(registry, ref, body.against, body.since))

    @router.post("/dataset-versions/{ref}/drift-upload", summary="Drift against uploaded table files")
    async def drift_upload(
        ref: Ref,
        against: Annotated[str, Form(min_length=1, max_length=4096)],
        files: Annotated[list[UploadFile], File()],
        registry: Caller,
        folder: Annotated[bool, Form()] = False,
    ) -> Response:
        from charter.service.drift_upload import drift_uploaded

        sent = [(upload.filename or "", upload.file) for upload in files]
        try:
            report = await run_in_threadpool(
                drift_uploaded, registry, ref, sent, folder=folder, label=against
            )
        finally:
            for upload in files:
                await upload.close()
        return json_result(report)

    @router.post("/models/{name}/uploads/check", summary="May this model registration upload weights?")
    def check_model_upload(name: Name, body: ModelUploadCheck, registry: Caller) -> Response:
        dataset_upload.check_model_upload(registry, name, body.version)
        return Response(status_code=204)

    @router.post(
        "/models/{name}/uploads", summary="Register a version whose weights were uploaded", status_code=201
    )
    def register_model_upload(name: Name, body: ModelUpload, registry: Caller) -> Response:
        weights = dataset_upload.parse_manifest(body.weights)
        version = dataset_upload.register_with_uploaded_weights(
            registry, name, body.spec, weights, version=body.version
        )
        return json_result(version, 201)

    @router.get("/model-versions/{ref}/training-data", summary="A version's training datasets, to reproduce")
    def training_data(ref: Ref, registry: Caller) -> Response:
        from charter.service.reproduce import training_plan

        return json_result(training_plan(registry, ref).as_dict())  # a protocol document: one form

    return router
