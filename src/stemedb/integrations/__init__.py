"""StemeDB for agent frameworks, built on the HTTP SDK (:mod:`stemedb.client`).

- :mod:`.mcp_server`: an MCP server (``stemedb mcp``) exposing the database as tools;
  extra ``stemedb[mcp]``.
- :mod:`.langgraph`: ``StemeDBStore``, a LangGraph ``BaseStore``; extra
  ``stemedb[langgraph]``.

Nothing is imported here, so ``import stemedb`` never needs either extra.
"""
