"""SDMetrics' own Quality Report on a real and a synthetic table: the cross-check of
`aepipe.metrics` on full-size data. Runs in the peer venv, beside the SDV release the peers
were measured with.

    PEER_PYTHON benchmarks/sdmetrics_check.py --real REAL.parquet --synthetic 'PATTERN' \
        --metadata-from REAL.parquet

Prints one JSON line: the overall score, Column Shapes and Column Pair Trends.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sdmetrics.reports.single_table import QualityReport


def metadata(schema: pa.Schema) -> dict:
    """Numbers numerical, everything else categorical, as aepipe's Adult schema has them."""
    return {"columns": {
        field.name: {"sdtype": "numerical" if pa.types.is_integer(field.type)
                     or pa.types.is_floating(field.type) else "categorical"}
        for field in schema}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--real", required=True)
    parser.add_argument("--synthetic", required=True, help="a file or a glob")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    real = pq.read_table(args.real)
    synthetic = pd.concat([pq.read_table(path).to_pandas()
                           for path in sorted(glob.glob(args.synthetic))], ignore_index=True)
    report = QualityReport()
    report.generate(real.to_pandas(), synthetic[real.column_names], metadata(real.schema),
                    verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]
    print(json.dumps({"score": report.get_score(),
                      "column_shapes": float(properties["Column Shapes"]),
                      "column_pair_trends": float(properties["Column Pair Trends"])}))


if __name__ == "__main__":
    main()
