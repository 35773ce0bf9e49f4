"""The page groups of the web UI, each adding its routes to the router (`add(router, site)`)."""
