"""The local endpoint through the SageMaker Runtime API, called by the real boto3 client (and
the AWS CLI where installed): the same application code as against SageMaker."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import boto3
import numpy as np
import pytest

from training.content_types import RECORDIO
from training.core.model import LinearModel
from training.data import recordio
from training.local.server import make_server

W = np.array([1.0, -2.0, 0.5], np.float32)
ROWS = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
BODIES = {
    "text/csv": b"1,2,3\n0,0,0\n",
    "application/json": json.dumps(
        {"instances": [{"features": [1, 2, 3]}, {"features": [0, 0, 0]}]}
    ).encode(),
    "application/jsonlines": b'{"features": [1, 2, 3]}\n{"features": [0, 0, 0]}\n',
    "application/x-recordio-protobuf": recordio.encode_dense(ROWS),
}
ACCEPTS = ["application/json", "application/jsonlines", "application/x-recordio-protobuf"]


@pytest.fixture(scope="module")
def endpoint():
    model = LinearModel("binary_classifier", "logistic", W, np.float32(0.25), 0.5)
    server = make_server(model, "127.0.0.1", 0, endpoint_name="ll-e2e-endpoint")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def runtime(endpoint, monkeypatch):
    """boto3's client, pointed at the local twin the way an application would: by the
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME environment variable, nothing in the code."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint)
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def container(endpoint, body, ctype, accept):
    """What the container interface answers for the same request."""
    conn = http.client.HTTPConnection(endpoint.removeprefix("http://"), timeout=10)
    conn.request("POST", "/invocations", body, {"Content-Type": ctype, "Accept": accept})
    res = conn.getresponse()
    return res.status, res.getheader("Content-Type"), res.read()


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("ctype", sorted(BODIES))
def test_every_content_type_through_boto3(runtime, endpoint, ctype, accept):
    answer = runtime.invoke_endpoint(
        EndpointName="ll-e2e-endpoint",
        ContentType=ctype,
        Accept=accept,
        Body=BODIES[ctype],
        CustomAttributes="trace-id=abc",
    )
    body = answer["Body"].read()
    assert answer["ContentType"] == accept
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert "CustomAttributes" not in answer  # Linear Learner's container sets none
    assert (200, accept, body) == container(endpoint, BODIES[ctype], ctype, accept)
    if accept == "application/json":
        scores = [p["score"] for p in json.loads(body)["predictions"]]
        z = ROWS.astype(np.float64) @ W.astype(np.float64) + 0.25
        np.testing.assert_allclose(scores, 1 / (1 + np.exp(-z)), rtol=1e-12)


def test_a_client_mistake_is_a_model_error_with_the_containers_answer(runtime):
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint", ContentType="text/csv", Body=b"1,2\n"
        )
    err = raised.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400
    assert err["OriginalMessage"] == "row 1 has 2 features, the model takes 3"
    assert "Received client error (400) from primary" in err["Error"]["Message"]
    assert err["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/ll-e2e-endpoint")
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint", ContentType="text/plain", Body=b"1,2,3"
        )
    assert raised.value.response["OriginalStatusCode"] == 415
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint", ContentType="text/csv", Accept="text/csv", Body=b"1,2,3"
        )
    assert raised.value.response["OriginalStatusCode"] == 406  # no CSV output, as on SageMaker


def test_requests_the_service_itself_refuses_are_validation_errors(runtime):
    with pytest.raises(runtime.exceptions.ValidationError, match="Endpoint other of account"):
        runtime.invoke_endpoint(EndpointName="other", ContentType="text/csv", Body=b"1,2,3")
    with pytest.raises(runtime.exceptions.ValidationError, match="over the 6 MB limit"):
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint", ContentType="text/csv", Body=b"1,2,3\n" * 1_200_000
        )
    with pytest.raises(runtime.exceptions.ValidationError, match="CustomAttributes"):
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint",
            ContentType="text/csv",
            Body=b"1,2,3",
            CustomAttributes="x" * 1025,
        )
    # the connection the oversized request used is closed, the next one is served
    answer = runtime.invoke_endpoint(
        EndpointName="ll-e2e-endpoint", ContentType="text/csv", Body=b"1,2,3"
    )
    assert json.loads(answer["Body"].read())["predictions"][0]["predicted_label"] == 0


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_aws_cli_invokes_the_local_endpoint(endpoint, tmp_path):
    (tmp_path / "rows.csv").write_bytes(BODIES["text/csv"])
    env = {**os.environ, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint}
    res = subprocess.run(
        [
            "aws", "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "ll-e2e-endpoint",
            "--content-type", "text/csv", "--body", f"fileb://{tmp_path / 'rows.csv'}",
            "--endpoint-url", endpoint, "--region", "us-east-1", str(tmp_path / "out.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["ContentType"] == "application/json"
    predictions = json.loads((tmp_path / "out.json").read_text())["predictions"]
    assert [p["predicted_label"] for p in predictions] == [0, 1]


@pytest.mark.parametrize(
    "parameter, value, message",
    [
        (
            "TargetModel",
            "model-a.tar.gz",
            "Endpoint ll-e2e-endpoint is not a multi-model endpoint and does not support "
            "target model header.",
        ),
        ("TargetContainerHostname", "linear-learner", "TargetContainerHostname: endpoint"),
        ("EnableExplanations", "`true`", "EnableExplanations: endpoint ll-e2e-endpoint has no"),
        ("InferenceComponentName", "ic-1", "InferenceComponentName: endpoint ll-e2e-endpoint"),
        ("SessionId", "NEW_SESSION", "SessionId: endpoint ll-e2e-endpoint does not support"),
        ("TargetVariant", "Canary", "TargetVariant: endpoint ll-e2e-endpoint has no variant"),
    ],
)
def test_parameters_for_features_the_endpoint_lacks_are_refused_not_ignored(
    runtime, parameter, value, message
):
    """A parameter silently ignored answers as if it worked: a canary test would pass against
    a variant that does not exist. SageMaker refuses them; so does the twin."""
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.invoke_endpoint(
            EndpointName="ll-e2e-endpoint",
            ContentType="text/csv",
            Body=b"1,2,3\n",
            **{parameter: value},
        )
    assert message in raised.value.response["Error"]["Message"]
    # what the endpoint does have is accepted: its one variant, an inference id
    answer = runtime.invoke_endpoint(
        EndpointName="ll-e2e-endpoint",
        ContentType="text/csv",
        Body=b"1,2,3\n",
        TargetVariant="AllTraffic",
        InferenceId="abc-123",
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_response_streaming_is_refused_with_the_call_to_use(runtime):
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.invoke_endpoint_with_response_stream(
            EndpointName="ll-e2e-endpoint", ContentType="text/csv", Body=b"1,2,3\n"
        )
    message = raised.value.response["Error"]["Message"]
    assert "does not stream responses; call InvokeEndpoint on ll-e2e-endpoint" in message


def test_the_request_log_has_a_line_a_request_and_never_the_payload():
    lines = []
    model = LinearModel("binary_classifier", "logistic", W, np.float32(0.25), 0.5)
    server = make_server(model, "127.0.0.1", 0, request_log=lines.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        secret = b"3.14159,2.71828,1.41421\n"
        for body in (secret, b"1,2\n"):  # a good request, then one the model refuses
            conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
            conn.getresponse().read()
        conn.request("GET", "/ping")
        conn.getresponse().read()
    finally:
        server.shutdown()
        server.server_close()
    assert len(lines) == 3
    first, refused, ping = (line.split() for line in lines)
    assert first[1:5] == ["POST", "/invocations", "200", f"in={len(secret)}B"]
    assert refused[1:4] == ["POST", "/invocations", "400"]
    assert ping[1:5] == ["GET", "/ping", "200", "in=0B"]
    assert all(line.split()[-1].endswith("ms") for line in lines)
    assert not any("3.14159" in line or "1,2" in line for line in lines)


def exchange(endpoint: str, data: bytes) -> bytes:
    """A raw request on its own connection, and everything answered until the server closes."""
    host, port = endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


INVOKE = b"POST /endpoints/ll-e2e-endpoint/invocations HTTP/1.1\r\nHost: x\r\n"


def test_a_chunked_body_on_the_runtime_path_is_the_request_not_an_empty_one(endpoint):
    """It was read as an empty body, and its chunk data as the next request."""
    rows = BODIES["text/csv"]
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(rows), rows)
    answer = exchange(
        endpoint,
        INVOKE
        + b"Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + chunked,
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"x-Amzn-Invoked-Production-Variant" in head
    assert len(json.loads(body)["predictions"]) == 2
    assert answer.count(b"HTTP/1.1 ") == 1


def test_ambiguous_framing_on_the_runtime_path_is_a_validation_error_and_closes(endpoint):
    answer = exchange(
        endpoint,
        INVOKE + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n1\r\n0\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"x-amzn-ErrorType: ValidationError" in head
    assert b"Connection: close" in head and answer.count(b"HTTP/1.1 ") == 1
    assert "both Content-Length and Transfer-Encoding" in json.loads(body)["message"]


def test_a_busy_endpoint_is_service_unavailable_to_boto3(monkeypatch):
    """Past the bytes in flight, InvokeEndpoint's ServiceUnavailable (503, "Try your call
    again"), with Retry-After; boto3 retries it like any 503, then raises it."""
    from botocore.config import Config

    from training.local.http_server import ServerLimits

    model = LinearModel("binary_classifier", "logistic", W, np.float32(0.25), 0.5)
    settings = ServerLimits(max_bytes_in_flight=100)
    server = make_server(model, "127.0.0.1", 0, endpoint_name="ll-e2e-endpoint", settings=settings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    holder = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        holder.sendall(INVOKE + b"Content-Length: 100\r\n\r\n1,")  # holds all 100 bytes
        deadline = time.monotonic() + 10
        while server._in_flight < 100:  # until its headers are read
            assert time.monotonic() < deadline
            time.sleep(0.01)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
        runtime = boto3.client(
            "sagemaker-runtime", region_name="us-east-1", config=Config(retries={"max_attempts": 1})
        )
        with pytest.raises(runtime.exceptions.ServiceUnavailable) as raised:
            runtime.invoke_endpoint(
                EndpointName="ll-e2e-endpoint", ContentType="text/csv", Body=b"1,2,3"
            )
        response = raised.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
        assert "the endpoint is busy" in response["Error"]["Message"]
    finally:
        holder.close()
        server.shutdown()
        server.server_close()


def test_a_content_type_that_is_not_ascii_is_a_validation_error(endpoint):
    answer = exchange(
        endpoint,
        INVOKE
        + b"Content-Type: text/csv\x85\r\nContent-Length: 5\r\nConnection: close\r\n\r\n1,2,3",
    )
    assert answer.startswith(b"HTTP/1.1 400") and b"x-amzn-ErrorType: ValidationError" in answer
    assert b"ContentType 'text/csv\\u0085' must be at most 1024 US-ASCII characters" in answer


@pytest.mark.parametrize("labels", [None, np.array([1.0, 0.0])])
def test_recordio_that_is_not_float32_is_a_model_error_naming_the_cast(runtime, labels):
    """Float64 features (what SDK writers make of a float64 array), or Float64 labels beside
    Float32 features: Linear Learner reads only Float32Tensor. Through the runtime API the
    container's 400 is a ModelError carrying its message, not a 500."""
    X = ROWS if labels is not None else ROWS.astype(np.float64)
    body = recordio.encode_dense(X, labels)
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName="ll-e2e-endpoint", ContentType=RECORDIO, Body=body)
    err = raised.value.response
    assert err["OriginalStatusCode"] == 400
    what = "labels" if labels is not None else "features"
    assert err["OriginalMessage"].startswith(
        f"{what} are Float64Tensor; Linear Learner reads only Float32Tensor"
    )
    assert err["OriginalMessage"].endswith(recordio.FLOAT32_FIX)
