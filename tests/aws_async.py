"""What a real account does over time and moto does at once, for the teardown tests: installed
on moto's own classes (the stand-in for AWS), never on this project's code.

moto completes jobs at once, has no StopTrainingJob, StopTransformJob or
StopHyperParameterTuningJob, deletes endpoints and notebook instances synchronously, and
answers ListBuckets in one page whatever MaxBuckets says. AWS, as its documentation says:

- Stop*Job: InProgress -> Stopping -> Stopped; stopping a tuning job stops the training jobs it
  launched; a job not InProgress answers ValidationException ("The request was rejected
  because the training job is in status Stopped", as AWS answered in
  github.com/awslabs/benchmark-ai/issues/928). "SageMaker sends the algorithm the SIGTERM
  signal, which delays job termination for 120 seconds. Algorithms might use this 120-second
  window to save the model artifacts" (StopTrainingJob API reference): here a stopping job
  turns Stopped after ``reads`` Describe calls, and a training job uploads its artifact to
  ``<S3OutputPath>/<job>/output/model.tar.gz`` at that moment.
- DeleteVpcEndpoints: Deleting, then Deleted.
- DeleteEndpoint / DeleteNotebookInstance: Deleting, then gone (the SageMaker waiters'
  EndpointDeleted / NotebookInstanceDeleted wait for Describe* to answer ValidationException).
- ListBuckets: pages of MaxBuckets with a ContinuationToken, each bucket with its BucketRegion;
  an account whose bucket quota is above 10,000 rejects unpaginated requests (S3 user guide,
  "General purpose bucket quotas, limitations, and restrictions").
"""

from __future__ import annotations

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, EmptyResult
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

REGION = "us-east-1"


def backend() -> SageMakerModelBackend:
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


def artifact_key(job: str) -> str:
    """Where a job whose S3OutputPath is ``s3://<bucket>/models/`` puts its model."""
    return f"models/{job}/output/model.tar.gz"


class AsyncSageMaker:
    """Jobs that take ``reads`` looks to stop (None: never), and endpoints and notebooks that
    take ``reads`` looks to go; every Stop* request is recorded in ``stopped``."""

    STATUS = {  # job kind: (backend table, status attribute, request parameter)
        "training": ("training_jobs", "training_job_status", "TrainingJobName"),
        "transform": ("transform_jobs", "transform_job_status", "TransformJobName"),
        "tuning": (
            "hyper_parameter_tuning_jobs",
            "hyper_parameter_tuning_job_status",
            "HyperParameterTuningJobName",
        ),
    }

    def __init__(self, monkeypatch, reads: int | None = 2):
        self.reads = reads
        self.stopped: list[str] = []
        self.looks: dict[str, int] = {}
        for kind, (table, attr, param) in self.STATUS.items():
            operation = "hyper_parameter_tuning" if kind == "tuning" else kind
            monkeypatch.setattr(
                SageMakerResponse,
                f"stop_{operation}_job",
                self._stop(table, attr, param),
                raising=False,
            )
            original = getattr(SageMakerModelBackend, f"describe_{operation}_job")
            monkeypatch.setattr(
                SageMakerModelBackend,
                f"describe_{operation}_job",
                self._describe_job(original, table, attr, kind),
            )
        self._deletes(monkeypatch)

    def _stop(self, table, attr, param):
        stand_in = self

        def stop(response):
            name = response._get_param(param)
            stand_in.stopped.append(name)
            job = getattr(response.sagemaker_backend, table)[name]
            if getattr(job, attr) != "InProgress":
                from moto.sagemaker.exceptions import ValidationError

                raise ValidationError(message=f"job {name} is {getattr(job, attr)}")
            setattr(job, attr, "Stopping")
            if table == "hyper_parameter_tuning_jobs":
                # "Stops a running hyperparameter tuning job and all running training jobs that
                # the tuning job launched" (StopHyperParameterTuningJob API reference); they are
                # named <tuning job>-NNN-<8 hex>
                for trial, run in response.sagemaker_backend.training_jobs.items():
                    if trial.startswith(f"{name}-") and run.training_job_status == "InProgress":
                        run.training_job_status = "Stopping"
            return EmptyResult()

        return stop

    def _tick(self, name: str) -> bool:
        """One more look at something in motion; True once it has had its ``reads``."""
        self.looks[name] = self.looks.get(name, 0) + 1
        return self.reads is not None and self.looks[name] >= self.reads

    def _describe_job(self, original, table, attr, kind):
        stand_in = self

        def describe(sm_backend, *args, **kwargs):
            name = (list(args) + list(kwargs.values()))[0]  # moto passes it either way
            job = getattr(sm_backend, table).get(name)
            if job is not None and getattr(job, attr) == "Stopping" and stand_in._tick(name):
                if kind == "training":  # the artifact saved in the 120-second window
                    url = job.output_data_config["S3OutputPath"]
                    bucket, _, prefix = url.removeprefix("s3://").partition("/")
                    key = f"{prefix}{'' if prefix.endswith('/') else '/'}{name}/output/model.tar.gz"
                    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, b"model")
                setattr(job, attr, "Stopped")
            return original(sm_backend, *args, **kwargs)

        return describe

    def _deletes(self, monkeypatch):
        stand_in = self
        describe_endpoint = SageMakerModelBackend.describe_endpoint
        get_notebook = SageMakerModelBackend.get_notebook_instance  # what Describe* reads
        delete_notebook = SageMakerModelBackend.delete_notebook_instance

        def delete_endpoint(sm_backend, name):
            sm_backend.endpoints[name].endpoint_status = "Deleting"

        def endpoint(sm_backend, name):
            item = sm_backend.endpoints.get(name)
            if item is not None and item.endpoint_status == "Deleting" and stand_in._tick(name):
                del sm_backend.endpoints[name]
            return describe_endpoint(sm_backend, name)

        def delete_notebook_instance(sm_backend, name):
            kept = sm_backend.notebook_instances[name]
            delete_notebook(sm_backend, name)  # moto's rule (Stopped or Failed), then it lingers
            kept.status = "Deleting"
            sm_backend.notebook_instances[name] = kept

        def notebook(sm_backend, name):
            item = sm_backend.notebook_instances.get(name)
            if item is not None and item.status == "Deleting" and stand_in._tick(name):
                del sm_backend.notebook_instances[name]
            return get_notebook(sm_backend, name)

        monkeypatch.setattr(SageMakerModelBackend, "delete_endpoint", delete_endpoint)
        monkeypatch.setattr(SageMakerModelBackend, "describe_endpoint", endpoint)
        monkeypatch.setattr(
            SageMakerModelBackend, "delete_notebook_instance", delete_notebook_instance
        )
        monkeypatch.setattr(SageMakerModelBackend, "get_notebook_instance", notebook)


class AsyncVpcEndpoints:
    """DeleteVpcEndpoints as on AWS: the endpoint is Deleting for ``reads`` DescribeVpcEndpoints,
    then Deleted (moto deletes at once); each look at a deleting endpoint counted in
    ``looks``. ``forgotten``: once deleted, EC2 no longer knows the id at all, so describing it
    by id answers InvalidVpcEndpointId.NotFound ("The specified VPC endpoint does not exist",
    "Error codes for the Amazon EC2 API", docs.aws.amazon.com/AWSEC2/latest/APIReference/
    errors-overview.html; moto's own error for an id it does not hold). How long AWS keeps a
    deleted endpoint listed is not documented, so a poller must survive both."""

    def __init__(self, monkeypatch, reads: int = 2, forgotten: bool = False):
        from moto.ec2.models import EC2Backend

        self.looks: dict[str, int] = {}
        stand_in = self
        delete, describe = EC2Backend.delete_vpc_endpoints, EC2Backend.describe_vpc_endpoints

        def delete_vpc_endpoints(ec2_backend, vpce_ids=None):
            delete(ec2_backend, vpce_ids)  # moto's own cleanup, then still on its way
            for vpce_id in vpce_ids or []:
                ec2_backend.vpc_end_points[vpce_id].state = "deleting"

        def describe_vpc_endpoints(ec2_backend, vpc_end_point_ids, filters=None):
            for e in ec2_backend.vpc_end_points.values():
                if e.state == "deleting":
                    stand_in.looks[e.id] = stand_in.looks.get(e.id, 0) + 1
                    if stand_in.looks[e.id] >= reads:
                        e.state = "deleted"
            if forgotten:
                for vpce_id in [
                    i for i, e in ec2_backend.vpc_end_points.items() if e.state == "deleted"
                ]:
                    del ec2_backend.vpc_end_points[vpce_id]
            return describe(ec2_backend, vpc_end_point_ids, filters)

        monkeypatch.setattr(EC2Backend, "delete_vpc_endpoints", delete_vpc_endpoints)
        monkeypatch.setattr(EC2Backend, "describe_vpc_endpoints", describe_vpc_endpoints)


class PagedBuckets:
    """ListBuckets as AWS answers an account with a bucket quota above 10,000: paginated
    requests only, pages of MaxBuckets, BucketRegion filtered. Each request is recorded."""

    def __init__(self, monkeypatch):
        self.requests: list[dict] = []
        stand_in = self

        def all_buckets(response):
            asked = {
                "MaxBuckets": response._get_param("max-buckets"),
                "ContinuationToken": response._get_param("continuation-token"),
                "BucketRegion": response._get_param("bucket-region"),
            }
            stand_in.requests.append(asked)
            if asked["MaxBuckets"] is None:
                raise S3ClientError(
                    "InvalidRequest", "unpaginated ListBuckets is not supported for this account"
                )
            buckets = sorted(response.backend.buckets.values(), key=lambda b: b.name)
            if asked["BucketRegion"]:
                buckets = [b for b in buckets if b.region_name == asked["BucketRegion"]]
            start = int(asked["ContinuationToken"] or 0)
            size = int(asked["MaxBuckets"])
            page = buckets[start : start + size]
            result = {
                "Owner": {"ID": "bcaf1ffd86f41161ca5fb16fd081034f", "DisplayName": "webfile"},
                "Buckets": [
                    {
                        "Name": b.name,
                        "CreationDate": b.creation_date_ISO8601,
                        "BucketRegion": b.region_name,
                    }
                    for b in page
                ],
            }
            if start + size < len(buckets):
                result["ContinuationToken"] = str(start + size)
            response.data["Action"] = "ListBuckets"
            return response.serialized(ActionResult(result))

        monkeypatch.setattr(S3Response, "all_buckets", all_buckets)


def record_emptying(monkeypatch) -> list[tuple[str, list[str], dict]]:
    """Every DeleteObjects moto receives: (bucket, keys, the status of every training job at
    that moment), in order."""
    calls = []
    original = S3Backend.delete_objects

    def delete_objects(s3_backend, bucket_name, objects, *args, **kwargs):
        statuses = {n: j.training_job_status for n, j in backend().training_jobs.items()}
        calls.append((bucket_name, [o["Key"] for o in objects], statuses))
        return original(s3_backend, bucket_name, objects, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "delete_objects", delete_objects)
    return calls
