"""Rehearsal: the deploy-everything and destroy-everything scripts, with the real pinned CDK
CLI, against moto's standalone server on a free loopback port. Ends with the audit finding
nothing.

What moto cannot do is taken out of the synthesized templates by `rehearsal_app.py`, the
`cdk --app` this test deploys through (the stacks themselves have no switch for it): the
bootstrap-version rule, the custom resources (their Lambda needs Docker) and the KMS key's
tags (moto's CloudFormation crashes on CFN-style KMS tags).
`--method=direct` because moto records no outputs for change-set deployments. moto also
writes no model artifact and answers invocations with queued bodies, so the smoke
prediction's answer is planted (for `deploy --model`, the answer the artifact itself gives, since
that command compares the two).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from lookalikes import assert_look_alikes_survive, plant_look_alikes, still_there
from ports import free_port, wait_for_port

from training.aws import featurizer_artifact

ROOT = Path(__file__).parents[1]
MOTO = Path(sys.executable).parent / "moto_server"


class AtEndpoint:
    """A boto3 session whose clients all talk to the moto server."""

    def __init__(self, session, url: str):
        self.session, self.url = session, url

    def client(self, name: str, **kwargs):
        return self.session.client(name, endpoint_url=self.url, **kwargs)


@pytest.fixture
def moto_server(tmp_path):
    port = free_port()
    log = open(tmp_path / "moto.log", "w")  # noqa: SIM115 (closed after the server stops)
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    wait_for_port(port)
    yield port
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def test_deploy_all_then_destroy_all_leaves_nothing(moto_server, tmp_path):
    url = f"http://localhost:{moto_server}"  # "localhost", not 127.0.0.1: moto's S3 template URLs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HTTP", "NO_PROXY"))}
    env.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        CDK_DISABLE_CLI_TELEMETRY="1",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_ARGS=f"--app '{sys.executable} tests/rehearsal_app.py'",
        CDK_DEPLOY_ARGS="--method=direct",
        MODEL_RECORD=str(tmp_path / "latest.json"),
    )

    def run(*cmd, timeout=600):
        res = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        return res.returncode, res.stdout + res.stderr

    rc, out = run(
        "npx", "--no-install", "cdk", "bootstrap", "aws://123456789012/us-east-1", "--no-notices"
    )
    assert rc == 0, out[-3000:]
    data = tmp_path / "data"
    rc, out = run(
        sys.executable,
        "-m",
        "training",
        "-q",
        "prepare",
        "--data",
        str(ROOT / "training" / "datasets" / "penguins.csv"),
        "--label",
        "sex",
        "--predictor-type",
        "binary_classifier",
        "--drop-unlabeled",
        "--out",
        str(data),
    )
    assert rc == 0, out
    answer = {"predictions": [{"score": 0.93, "predicted_label": 1}] * 5}
    requests.post(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
    )

    rc, out = run("bash", "scripts/deploy-all.sh", str(data))
    assert rc == 0, out[-4000:]
    for step in (
        "1/5 base stack",
        "2/5 training on SageMaker",
        "3/5 endpoint stack",
        "4/5 endpoint runs the new config",
        "5/5 smoke prediction",
    ):
        assert step in out, step
    record = json.loads((tmp_path / "latest.json").read_text())
    session = boto3.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    cfn = session.client("cloudformation", endpoint_url=url)
    stacks = {
        s["StackName"]: s["StackStatus"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }
    assert stacks.get("LlE2eBase") == "CREATE_COMPLETE"
    assert stacks.get("LlE2eEndpoint") == "CREATE_COMPLETE"
    models = session.client("sagemaker", endpoint_url=url).list_models()["Models"]
    model = session.client("sagemaker", endpoint_url=url).describe_model(
        ModelName=models[0]["ModelName"]
    )
    # prepare fitted the data's preprocessing: the endpoint is the serial pipeline on raw rows
    assert [c["ModelDataUrl"] for c in model["Containers"]] == [
        record["featurizer_data_url"],
        record["model_data_url"],
        record["featurizer_data_url"],
    ]
    assert record["predictor_type"] == "binary_classifier"
    assert "5/5 smoke prediction on raw rows" in out
    # the notebook instance's OnStart sync finds the notebook with its training package
    outputs = cfn.describe_stacks(StackName="LlE2eBase")["Stacks"][0]["Outputs"]
    bucket = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "BucketName")
    listed = session.client("s3", endpoint_url=url).list_objects_v2(
        Bucket=bucket, Prefix="notebooks/"
    )
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert {
        "notebooks/linear_learner.ipynb",
        "notebooks/training/__init__.py",
        "notebooks/training/local/learner.py",
        "notebooks/training/datasets/penguins.csv",
    } <= keys, sorted(keys)
    run_notebook_on_aws(session, url, bucket, outputs, record, tmp_path, env)
    deploy_a_local_model(session, url, bucket, data, tmp_path, run)

    moto = AtEndpoint(session, url)
    planted = plant_look_alikes(moto)  # another team's things, sharing our name prefix

    rc, out = run("bash", "scripts/destroy-all.sh")
    assert rc == 0, out[-4000:]
    assert "audit: nothing billable of 'll-e2e' left in us-east-1" in out
    left = {
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }
    assert left <= {"CDKToolkit", *planted["stack"]}
    s3 = session.client("s3", endpoint_url=url)
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket not in buckets, buckets
    assert_look_alikes_survive(planted, still_there(moto))
    rc, out = run(sys.executable, "-m", "training", "audit", "--region", "us-east-1")
    assert rc == 0 and "nothing billable" in out


PLANTED = (0.912, 0.125, 0.771, 0.333, 0.648)  # moto's endpoint answers, one per row


def run_notebook_on_aws(session, url, bucket, outputs, record, tmp_path, env):
    """The notebook as the instance runs it: the bucket's notebooks/ synced into one folder,
    project.json as the lifecycle script writes it, TARGET=aws against the deployed stacks."""
    from notebook_run import run_notebook

    s3 = session.client("s3", endpoint_url=url)
    folder = tmp_path / "instance" / "linear-learner"
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="notebooks/")["Contents"]:
        target = folder / obj["Key"].removeprefix("notebooks/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(target))
    role = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RoleArn")
    cfn = session.client("cloudformation", endpoint_url=url)
    endpoint_outputs = cfn.describe_stacks(StackName="LlE2eEndpoint")["Stacks"][0]["Outputs"]
    project = {
        # moto names CloudFormation's endpoint itself; AWS uses the project's fixed name
        "endpoint_name": next(
            o["OutputValue"] for o in endpoint_outputs if o["OutputKey"] == "EndpointName"
        ),
        "project": "ll-e2e",
        "region": "us-east-1",
        "bucket": bucket,
        "role_arn": role,
        "image_uri": record["image_uri"],
        "kms_key_arn": next(o["OutputValue"] for o in outputs if o["OutputKey"] == "KeyArn"),
    }
    (folder / "project.json").write_text(json.dumps(project))
    # the pipeline's answer: Linear Learner's, plus the decoder's predicted_class (the classes
    # of deploy-all's data: the same file and label as the notebook's)
    label = json.loads((tmp_path / "data" / "manifest.json").read_text())["label"]
    answer = {
        "predictions": [
            {
                "score": s,
                "predicted_label": int(s > 0.5),
                "predicted_class": label["classes"][int(s > 0.5)],
            }
            for s in PLANTED
        ]
    }
    requests.post(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
    )
    text = run_notebook(  # the kernel's environment: moto's endpoint and fake credentials only
        folder,
        env={**env, "LL_TARGET": "aws", "LL_RUN_DIR": str(tmp_path / "nb-run"), "LL_POLL_S": "0.1"},
    )
    assert f"bucket: {bucket} | region: us-east-1" in text
    assert "artifact: s3://" in text and "training job ll-e2e-" in text
    assert f"endpoint {project['endpoint_name']}: InService" in text
    # the endpoint's answers as the notebook shows them: class names, row by row in order
    classes = json.loads((tmp_path / "nb-run" / "data" / "manifest.json").read_text())["label"]
    table = text[re.search(r"actual\s+predicted\s+score", text).start() :].splitlines()[1:6]
    decoded = [(line.split()[2], float(line.split()[3])) for line in table]
    assert decoded == [(classes["classes"][int(s > 0.5)], s) for s in PLANTED], table
    sm = session.client("sagemaker", endpoint_url=url)
    jobs = sm.list_training_jobs(SortBy="CreationTime", SortOrder="Ascending")
    assert len(jobs["TrainingJobSummaries"]) == 2  # deploy-all's, the notebook's
    for job in jobs["TrainingJobSummaries"]:  # both encrypt with the project key
        described = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        assert described["OutputDataConfig"]["KmsKeyId"] == project["kms_key_arn"]
        assert described["EnableNetworkIsolation"] is True


def deploy_a_local_model(session, url, bucket, data, tmp_path, run):
    """A model trained here goes to the running endpoint through `deploy --model`: uploaded
    under its SHA-256, recorded, and the endpoint stack's Model serves exactly that object."""
    from training.aws.deploy import fill_row
    from training.core import artifact
    from training.core.featurizer import Featurizer

    rc, out = run(
        sys.executable, "-m", "training", "-q", "train", "--data-dir", str(data),
        "--out", str(tmp_path / "local-model"),
    )  # fmt: skip
    assert rc == 0, out
    model_file = tmp_path / "local-model" / "model.tar.gz"
    model = artifact.load(model_file)
    # train put the preprocessing beside the model: the smoke prediction (no --data-dir) sends
    # one raw row of its fill values, and must get what the model answers for it here
    featurizer = Featurizer.load(model_file.parent / "preprocessing.json")
    expected = model.predict(featurizer.features_from_csv(fill_row(featurizer) + "\n"))
    answer = {
        "predictions": [
            {"score": float(s), "predicted_label": int(p)}
            for s, p in zip(expected.score, expected.predicted_label)
        ]
    }
    requests.post(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
    )
    record_file = tmp_path / "deployed.json"
    rc, out = run(
        sys.executable, "-m", "training", "deploy", "--model", str(model_file),
        "--record", str(record_file), "-c", "alarm_latency_p99_ms=2500",
    )  # fmt: skip
    assert rc == 0, out[-4000:]
    assert "this deploy changes alarm_latency_p99_ms: 1000 -> 2500" in out
    for step in ("1/4 upload", "2/4 endpoint stack", "3/4 endpoint runs", "4/4 smoke"):
        assert step in out, step
    assert "smoke prediction on raw rows" in out and "as the artifact does" in out
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    key = f"models/sha256/{digest}/model.tar.gz"
    record = json.loads(record_file.read_text())
    assert record["model_data_url"] == f"s3://{bucket}/{key}"
    assert (record["sha256"], record["feature_dim"]) == (digest, model.feature_dim)
    s3 = session.client("s3", endpoint_url=url)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == model_file.read_bytes()
    featurizer_key = record["featurizer_data_url"].split(f"s3://{bucket}/", 1)[1]
    assert featurizer_key.startswith("models/featurizer/sha256/")
    assert s3.get_object(Bucket=bucket, Key=featurizer_key)["Body"].read() == (
        featurizer_artifact.to_bytes(model_file.parent / "preprocessing.json")
    )
    sm = session.client("sagemaker", endpoint_url=url)
    served = [
        [c["ModelDataUrl"] for c in sm.describe_model(ModelName=m["ModelName"])["Containers"]]
        for m in sm.list_models()["Models"]
    ]
    assert [
        record["featurizer_data_url"],
        record["model_data_url"],
        record["featurizer_data_url"],
    ] in served, served
    assert latency_alarm_ms(session, url) == 2500

    # the option was kept: a second deploy without -c does not put cdk.json's 1000 ms back
    requests.post(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        timeout=10,
        json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
    )
    rc, out = run(
        sys.executable, "-m", "training", "deploy", "--model", str(model_file),
        "--record", str(record_file),
    )  # fmt: skip
    assert rc == 0, out[-4000:]
    assert "stack options (deploy-options-ll-e2e.json): -c alarm_latency_p99_ms=2500" in out
    assert "this deploy changes" not in out
    assert latency_alarm_ms(session, url) == 2500


def latency_alarm_ms(session, url) -> float:
    """The p99 model latency alarm's threshold in the endpoint stack CloudFormation holds, in
    ms (ModelLatency is in µs). Read from the deployed template: moto's CloudFormation does
    not create CloudWatch alarms, and an update adding data capture left moto's endpoint on
    its old config here, so the option checked is one moto deploys faithfully."""
    cfn = session.client("cloudformation", endpoint_url=url)
    body = cfn.get_template(StackName="LlE2eEndpoint")["TemplateBody"]
    template = body if isinstance(body, dict) else json.loads(body)
    (alarm,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == "ModelLatency"
    ]
    return alarm["Threshold"] / 1000
