"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# -- data path (validate, prepare, predict --input) --------------------------------------------

# A feature column that maps one to one onto the label is reported as a copy of it only when
# the first rows hold at least this many rows beyond one per label value: a column independent
# of a balanced binary label then maps one to one by chance about once in 2**30 (1e-9), so a
# real column is never refused by luck, while a copied label in any file of over 30 rows is.
LABEL_COPY_MIN_REPEATS = 30

# -- batch transform (local) -------------------------------------------------------------------
