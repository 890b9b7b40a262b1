"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# SageMaker's own: InvokeEndpoint's Body is at most 6 MB (botocore's sagemaker-runtime model,
# shape BodyBlob, "max": 6291456). Larger requests are refused with 413 before being read.
SERVER_MAX_BODY = 6 * 1024 * 1024
# The request line and headers together. A real client's are well under 4 KB (CustomAttributes,
# the largest, is at most 1024 characters); the stdlib server allowed 64 KB per line.
SERVER_MAX_HEADER_BYTES = 64 * 1024
# A chunk-size line or one trailer line of a chunked body (the size is at most 16 hex digits).
SERVER_MAX_CHUNK_LINE = 1024
# Deadlines per request, not per receive: a client trickling a byte now and then is cut off
# when its headers (from their first byte) or its body (from the end of the headers) are late.
# 10 s for headers, which a client sends in one packet; 60 s for a body of up to 6 MB (100 KB/s),
# the time SageMaker gives a container to answer ("A customer's model containers must respond
# to requests within 60 seconds", InvokeEndpoint API reference,
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html).
SERVER_HEADER_DEADLINE_S = 10.0
SERVER_BODY_DEADLINE_S = 60.0
# A keep-alive connection waiting for its next request (the stdlib server's socket timeout was
# the same 30 s), and the time an answer may take to be read by its client.
SERVER_IDLE_TIMEOUT_S = 30.0
SERVER_SEND_DEADLINE_S = 60.0
# Open connections. Waiting for a request costs a buffer, not a thread, so this is far above
# what a local client opens, yet under the common 1024 open-file limit. When it is reached, the
# connection that has waited longest for its request is closed to let a new one in: a
# legitimate client sends its request at once, so slow senders are the ones closed.
SERVER_MAX_CONNECTIONS = 512
# The kernel's queue of connections not yet accepted (the stdlib's 5 reset clients under load).
SERVER_LISTEN_BACKLOG = 1024
# Threads computing answers: scoring is CPU-bound, so more would not answer faster; they are
# only held by a complete request, never by a client still sending one.
SERVER_WORKERS = 16
# Request bodies held at once (being received, queued or being answered). Parsing a 6 MB request
# takes up to ~40x its size (measured: 236 MB for 6 MB of one-feature CSV, 221 MB of JSON
# lines), so 12 MB (two full-size requests) keeps the server near 0.5 GB; past it new requests
# get 503 with Retry-After (a request without a body never does).
SERVER_MAX_BYTES_IN_FLIGHT = 12 * 1024 * 1024
SERVER_RETRY_AFTER_S = 1
# After refusing a request whose body is still arriving, what is read and discarded before
# closing (so the client reads the answer instead of a connection reset), and for how long.
SERVER_MAX_DRAIN_BYTES = 64 * 1024 * 1024
SERVER_DRAIN_S = 5.0

# -- data path (validate, prepare, predict --input) --------------------------------------------

# -- batch transform (local) -------------------------------------------------------------------
