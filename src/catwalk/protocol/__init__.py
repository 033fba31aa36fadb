"""The Open Inference Protocol (KServe "V2", Triton's HTTP protocol) as a pure codec.

:mod:`~catwalk.protocol.tensors` maps model.yml's schema to tensors,
:mod:`~catwalk.protocol.request` turns an inference request (JSON and binary tensor data)
into records, :mod:`~catwalk.protocol.response` turns output records into a response body,
:mod:`~catwalk.protocol.binary` holds the byte layouts. No HTTP here: the routes are
:mod:`catwalk.server.v2_routes`. docs/protocol.md documents the mapping.
"""
