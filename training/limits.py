"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# -- data path (validate, prepare, predict --input) --------------------------------------------
# The longest line ``validate`` reads from a channel CSV (and the raw-row reader's, when no
# request bounds it: ``transform --target aws`` rewriting a raw CSV for upload), in bytes:
# prepare writes at most 16 bytes a value ("%.9g" and a comma), so a dense row of a million
# features fits; a file without line breaks (or one 300 MB row) is refused after reading this
# much instead of being read whole, which cost ~10x its size. ``predict`` and local
# ``transform`` cap rows lower, at the request they must fit in (SageMaker's 6 MB real-time
# payload; MaxPayloadInMB): those limits stay beside that rule.
MAX_ROW_BYTES = 16 << 20

# -- batch transform (local) -------------------------------------------------------------------
