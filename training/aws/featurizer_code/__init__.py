"""What ``featurizer.tar.gz`` carries under ``code/``: the entry points SageMaker's scikit-learn
container runs in the serial inference pipeline (:mod:`training.aws.featurizer_artifact`)."""
