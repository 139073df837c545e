"""`mcja serve`: an HTTP search service over a gallery index, with a web page for operators (extra `serve`).

`create_app(SearchService(...))` is the FastAPI application; `mcja.serve.server.run_server` runs it under uvicorn.
"""
