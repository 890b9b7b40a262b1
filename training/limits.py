"""Every limit we set against hostile or oversized input, in one place.

Each is a deliberate choice (the reason beside it) and is written down for users in
``docs/limits.md``; code refers to these names, never to a bare number. Limits that are
SageMaker's own (payload sizes, quotas) stay beside the AWS rule they mirror.
"""

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
