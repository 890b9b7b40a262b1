"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own are mirrored in their own section, each with the AWS source that sets it.
"""

# -- SageMaker's own (mirrored, not chosen) ----------------------------------------------------
# InvokeEndpoint's request and response Body on a real-time endpoint: at most 6291456 bytes
# (botocore's model of the API, sagemaker-runtime 2017-05-13 service-2.json, InvokeEndpoint
# input and output ``Body``: "max": 6291456). The local endpoint refuses larger requests with
# 413 before reading them; predict sizes its requests (and answers) under it.
INVOKE_MAX_BODY = 6291456
# Serverless endpoints: "The maximum request and response payload size for serverless
# invocations is 4 MB" (SageMaker DG, "Invoke a serverless endpoint",
# serverless-endpoints-invoke.html).
SERVERLESS_MAX_BODY = 4 * 1024 * 1024

# -- model reader (model.tar.gz, model_algo-1, its JSON and NDArrays) --------------------------
# The largest realistic Linear Learner model is its float32 weights, feature_dim x outputs x 4
# bytes: the biggest real artifact found holds 5000 features (20 KB); hashed text features reach
# 2**24 (64 MiB, binary) and a 1M-feature, 100-class multiclass model is 400 MB. 1 GiB keeps
# 2.5x over that. Loading one takes 2 to 3x its size in memory (measured on a 64 MiB model:
# 128 MiB allocated at the peak - two of the file, its params member, the arrays - and the
# process's peak RSS grows by 128 MiB from a bare model_algo-1, 193 MiB from a model.tar.gz),
# so at most about 3 GiB.
MAX_MODEL_BYTES = 1 << 30
# model.tar.gz, compressed or unpacked: the model plus its tar headers and padding (SageMaker's
# holds 10 KiB of them), with room for a few small files a user added.
MAX_ARCHIVE_BYTES = MAX_MODEL_BYTES + (1 << 20)
# tar members: SageMaker writes one (model_algo-1); a user's repack may add a few files.
MAX_TAR_MEMBERS = 64
# a GNU long name or a PAX header: paths are at most 4096 bytes (Linux PATH_MAX), a PAX
# header a few records; 64 KiB is 16x that, and tarfile reads such a header whole.
MAX_TAR_HEADER_BYTES = 64 << 10
# model_algo-1's ZIP: Linear Learner writes 4 members and a 250-byte central directory.
MAX_ZIP_MEMBERS = 64
MAX_ZIP_DIRECTORY_BYTES = 1 << 20
# manifest.json, additional-params.json, mx-mod-symbol.json: about 1 KB each in every real
# artifact (the graph has 7 nodes whatever the model's size); 4 MiB leaves room for a
# per-class list in metrics_params of 200 000 classes, and parses in well under a second.
MAX_JSON_BYTES = 4 << 20
# nesting of those JSON files: the graph's is 4 ({nodes: [{inputs: [[...]]}]}); Python's own
# parser would stop at ~1000 with a RecursionError.
MAX_JSON_DEPTH = 32
# digits of a JSON integer: any int64 (19 digits and a sign); Python refuses to parse more than
# 4300 with a ValueError, and no field of an artifact needs more than 5 (mxnet_version 10301).
MAX_JSON_INT_DIGITS = 20
# dimensions of an NDArray in mx-mod-0000.params: Linear Learner's are 2-D; MXNet's TShape and
# numpy before 2.0 stop at 32.
MAX_NDARRAY_DIMS = 32

# preprocessing.json (beside a model, or in featurizer.tar.gz): one-hot vocabularies are its
# bulk, ~100 bytes a category, so this holds over half a million categories; parsing it costs
# a few times its size. (training.core.featurizer keeps a copy for the scikit-learn container.)
MAX_PREPROCESSING_BYTES = 64 << 20

# -- local endpoint server (training/local/server.py) ------------------------------------------

# The request body's limit is SageMaker's own: INVOKE_MAX_BODY, above.
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
# Answers computed but not yet read by their clients (what the socket did not take is sent by
# the reading thread as the client reads, so a worker never waits on one). A client reads its
# answer at once; 64 MB is ten full-size (6 MB) answers waiting. Past it the connection that
# has waited longest to read is closed, so clients that never read cannot grow the server.
SERVER_MAX_UNREAD_BYTES = 64 * 1024 * 1024
# The largest answer the local endpoint renders. A multiclass answer grows with the classes
# (5.6 MB of one-feature CSV is a 396 MB answer with 20 classes, a 1.2 GB peak), which the
# bytes-in-flight budget (request bodies) does not see. SageMaker's real-time endpoints answer
# at most 6 MB (InvokeEndpoint's Body, 6,291,456 bytes, botocore's sagemaker-runtime model) and
# predict sizes its requests by their answers, so 64 MiB is ten times what a real endpoint's
# client can get: a request whose scores alone (4 bytes each) pass it is refused before
# scoring, and rendering stops there (413). Local batch transform scores in-process, unbound.
SERVER_MAX_ANSWER_BYTES = 64 * 1024 * 1024
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
# lines), so 12 MB (two full-size requests) keeps a binary or regression server near 0.5 GB;
# past it new requests get 503 with Retry-After (a request without a body never does). A
# multiclass answer grows with the classes: SERVER_MAX_ANSWER_BYTES bounds it.
SERVER_MAX_BYTES_IN_FLIGHT = 12 * 1024 * 1024
SERVER_RETRY_AFTER_S = 1
# After refusing a request whose body is still arriving, what is read and discarded before
# closing (so the client reads the answer instead of a connection reset), and for how long.
SERVER_MAX_DRAIN_BYTES = 64 * 1024 * 1024
SERVER_DRAIN_S = 5.0

# -- data path (validate, prepare, predict --input) --------------------------------------------
# The longest line ``validate`` reads from a channel CSV (and the raw-row reader's, when no
# request bounds it: ``transform --target aws`` rewriting a raw CSV for upload), in bytes:
# prepare writes at most 16 bytes a value ("%.9g" and a comma), so a dense row of a million
# features fits; a file without line breaks (or one 300 MB row) is refused after reading this
# much instead of being read whole, which cost ~10x its size. ``predict`` and local
# ``transform`` cap rows lower, at the request they must fit in (SageMaker's 6 MB real-time
# payload; MaxPayloadInMB): those limits stay beside that rule.
MAX_ROW_BYTES = 16 << 20

# Columns of a raw CSV with a header (``prepare``, ``raw_checks.validate_raw_csv``), counted from
# the header (and each row's fields, outside quotes) before any per-column work: every column
# is a Python-level object in pandas, scikit-learn's ColumnTransformer (which looks each name
# up in a list: quadratic) and preprocessing.json. Real tabular files have tens to hundreds of
# columns (the widest common dense benchmarks: Gisette 5 000, Arcene 10 000); measured with 40
# rows: 20 000 columns took 23 s and 1 GB, 100 000 took 205 s, a 300 000-column header hung
# for minutes, and a ragged row of 4M fields took 2 GB in pandas' tokenizer. At this limit
# (40 rows) prepare takes 10-15 s and 0.67 GB; over it (header or any row), it is refused in
# about a second and 0.15 GB. Wider data is sparse (hashed text, one-hot ids) and belongs in
# RecordIO, which Linear Learner reads sparse.
MAX_RAW_COLUMNS = 10_000
# Features of a label-first channel CSV (``validate``, the local trainer), counted on its first
# rows before any cell is parsed. Linear Learner sets no bound on feature_dim ("auto or positive
# integer", https://docs.aws.amazon.com/sagemaker/latest/dg/ll_hyperparameters.html), but a
# dense CSV row is ~10 bytes a value: 100 000 features are 1 MB a row, and 1M features with 5
# rows took validate 18 s and 2.5 GB (polars parses column by column); at this limit, 40 rows
# take 3-4 s and 0.63 GB, and one feature over is refused in 0.9 s and 0.1 GB. Wider data is
# sparse and goes as RecordIO-protobuf (keys + values), which validate reads without this limit.
MAX_CSV_FEATURES = 100_000
# Tests only: a lower column limit (never a higher one) for both, through the real code path,
# so that a file "at the limit" stays small: TRAINING_TEST_MAX_COLUMNS=<raw>,<csv features>.
MAX_COLUMNS_TEST_ENV = "TRAINING_TEST_MAX_COLUMNS"


def column_limits() -> tuple[int, int]:
    """(MAX_RAW_COLUMNS, MAX_CSV_FEATURES), each lowered by MAX_COLUMNS_TEST_ENV when set."""
    import os

    raw, csv = MAX_RAW_COLUMNS, MAX_CSV_FEATURES
    given = os.environ.get(MAX_COLUMNS_TEST_ENV)
    if given:
        lower_raw, lower_csv = (int(v) for v in given.split(","))
        raw, csv = min(raw, lower_raw), min(csv, lower_csv)
    return raw, csv


# A feature column that maps one to one onto the label is reported as a copy of it only when
# the first rows hold at least this many rows beyond one per label value: a column independent
# of a balanced binary label then maps one to one by chance about once in 2**30 (1e-9), so a
# real column is never refused by luck, while a copied label in any file of over 30 rows is.
LABEL_COPY_MIN_REPEATS = 30
# A numeric feature is reported as a copy of a regressor's numeric label when a straight line
# through it explains all of the label's variance but at most this share (1 - r**2), in at least
# LABEL_COPY_MIN_REPEATS rows: ``price_cents`` beside ``price``, or the label rounded to 2 of
# its 6 digits, is caught; a real feature leaving a millionth of the variance unexplained would
# itself be the answer (R**2 0.999999), and 30 independent rows reach it by chance never
# (p < 1e-70).
LABEL_COPY_MAX_UNEXPLAINED = 1e-6

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
