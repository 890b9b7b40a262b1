"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# -- data path (validate, prepare, predict --input) --------------------------------------------

# -- batch transform (local) -------------------------------------------------------------------

# -- endpoint requests (predict --target aws/local: training/endpoint_payload.py) --------------

# Room left in every request and answer under the endpoint's payload limit, for the JSON
# wrapper, separators and rounding in our size arithmetic: a batch one byte over the limit is
# refused whole by SageMaker, so we stay a clear margin below it.
PAYLOAD_HEADROOM_BYTES = 64 * 1024

# A string in an answer (a pipeline's predicted_class) is budgeted at least this long: the
# first answer shows one class name, and another class's name may be longer. Class names over
# this are not bounded by it (the answer could then exceed the limit; a 256-byte class name is
# not a label we expect).
ANSWER_STRING_BYTES = 256
