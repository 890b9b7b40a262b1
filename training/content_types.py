"""Every MIME type the project reads or writes, spelled once.

Linear Learner trains on exactly ``text/csv`` or ``application/x-recordio-protobuf`` channels
(other spellings fail the job) and its endpoint also takes ``application/json`` and
``application/jsonlines``; it answers in JSON, JSON lines or RecordIO, never CSV.
"""

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"
JSON = "application/json"
JSONLINES = "application/jsonlines"

CHANNEL = {"csv": CSV, "recordio": RECORDIO}  # channel format -> its training ContentType
REQUEST = (CSV, JSON, JSONLINES, RECORDIO)  # what an endpoint invocation may send
