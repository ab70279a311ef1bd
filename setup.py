"""aepipe: autoencoders for Apache Beam pipelines.

Also what Dataflow workers install with `--setup_file ./setup.py`. The exact versions this
project is tested with are pinned in constraints.txt: `pip install -c constraints.txt .`
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"',
                    (Path(__file__).parent / "aepipe" / "__init__.py").read_text()).group(1)

FEAST = ["feast>=0.67,<0.68"]  # needs pandas < 3 and tenacity < 9

setup(
    name="aepipe",
    version=VERSION,
    description="Autoencoders for Apache Beam pipelines: train, encode, sample",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["aepipe", "aepipe.*", "pipelines", "pipelines.*"]),
    package_data={"aepipe": ["data/*.parquet", "data/*.yaml", "data/README.md"]},
    install_requires=[
        "apache-beam[gcp]>=2.77,<2.78",
        "tensorflow>=2.21,<2.22",
        "tensorflow-transform>=1.21,<1.22",
        "keras>=3.15,<4",
        # numpy, pandas and pyarrow within Beam 2.77's own ranges (its core and [dataframe]
        # extra): Dataflow workers keep the versions in Beam's container.
        "numpy>=2,<2.5",
        "pandas>=2,<2.4",
        "pyarrow>=16,<26",
        "pyyaml>=6",
        "scikit-learn>=1.3,<2",
        "scipy>=1.9,<2",
        "matplotlib>=3.5,<4",
        "sdmetrics>=0.32,<0.33",  # aepipe evaluate: SDMetrics' own column and pair scores
        "threadpoolctl>=3",
    ],
    extras_require={
        # `aepipe.integrations.feast.feature_view`: the encoded output as a Feast FeatureView.
        "feast": FEAST,
        # s3:// paths: Beam's S3 file system (boto3).
        "s3": ["apache-beam[aws]>=2.77,<2.78"],
        # gcp-storage-emulator and moto: the GCS and S3 emulators of tests/test_object_store.py
        "test": ["pytest", "hypothesis", "polars", "duckdb", "gcp-storage-emulator",
                 "apache-beam[aws]>=2.77,<2.78", "moto[s3]"] + FEAST,
    },
    entry_points={"console_scripts": ["aepipe=pipelines.cli:main"]},
)
