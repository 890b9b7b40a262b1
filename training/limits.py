"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------

# -- local endpoint server (training/local/server.py) ------------------------------------------

# -- data path (validate, prepare, predict --input) --------------------------------------------

# -- batch transform (local) -------------------------------------------------------------------

# -- AWS teardown (audit --delete, destroy-all: training/aws/audit.py) -------------------------

# How long teardown waits for the project's stopped jobs to leave InProgress/Stopping before it
# refuses to empty the bucket. StopTrainingJob gives the algorithm 120 s after SIGTERM to save
# its artifact, then the instances are released; a tuning job stops all its training jobs at
# once. 20 minutes is several times that; past it something is wrong and emptying the bucket
# under a job that may still write to it would leave the stack's delete failing (BucketNotEmpty).
TEARDOWN_JOB_STOP_S = 20 * 60
# How long teardown waits for a deleted endpoint or notebook instance to disappear (SageMaker
# deletes asynchronously); the same 30 minutes as botocore's own EndpointDeleted and
# NotebookInstanceDeleted waiters (30 s x 60 attempts). Past it the audit reports it as left.
TEARDOWN_DELETE_WAIT_S = 30 * 60
