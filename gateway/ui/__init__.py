"""The execution viewer: a web page for people, served by the gateway under `/ui/`.

The page is plain HTML, CSS and ES modules shipped in `static/` (package data):
no build step, no CDN, nothing fetched from anywhere but the gateway itself. It
calls the same REST API as every other client, with the API key the user typed,
kept in the browser's `sessionStorage`. `routes.ui_routes()` serves it.
"""
