"""memos-mcp: memosd's memories offered to LLM hosts over the Model Context
Protocol (stdio, revision 2025-06-18).

    server.py     JSON-RPC 2.0 framing: one message a line, replies, errors
    session.py    the MCP methods (initialize, tools/*, resources/*, ping)
    tools.py      the tools: schemas and handlers
    resources.py  cubes as resources (memos://cube/NAME)
    arguments.py  tool arguments checked against what the schemas promise
    views.py      memosd's results as the JSON the tools answer
    timestamps.py times in and out: ISO-8601 or epoch milliseconds
    daemon.py     the connection to memosd, made when first needed
    main.py       the command line
"""

# memosd's version: the bridge is released with the daemon it speaks to.
__version__ = "0.1.0"

SERVER_NAME = "memos-mcp"
