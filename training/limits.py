"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# -- data path (validate, prepare, predict --input) --------------------------------------------

# -- batch transform (local) -------------------------------------------------------------------

# -- stacks: what the notebook role may start (stacks/base_stack.py) -------------------------

# The notebook's user trains as the notebook role; its CreateTrainingJob is allowed only on
# these general-purpose and compute CPU types, large enough for the data this project trains
# on; each takes a volume key, which the policy requires (instance_types.accepts_volume_key) ...
NOTEBOOK_TRAINING_INSTANCE_TYPES = (
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.m5.4xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.c5.4xlarge",
)
# ... and for at most this long (a forgotten job stops within a day; train_aws asks 3600 s)
NOTEBOOK_TRAINING_MAX_RUNTIME_S = 24 * 3600
