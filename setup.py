"""aepipe: autoencoders for Apache Beam pipelines.

Also what Dataflow workers install with `--setup_file ./setup.py`. The exact versions this
project is tested with are pinned in constraints.txt: `pip install -c constraints.txt .`
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"',
                    (Path(__file__).parent / "aepipe" / "__init__.py").read_text()).group(1)

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
        "numpy>=2,<3",
        "pandas>=2",
        "pyarrow>=16",
        "pyyaml>=6",
        "scikit-learn>=1.3,<2",
        "scipy>=1.9,<2",
        "matplotlib>=3.5,<4",
        "threadpoolctl>=3",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={"console_scripts": ["aepipe=aepipe.cli:main"]},
)
