"""RPC doors (XML-RPC, JSON-RPC 2.0) over one method registry."""
