"""Arrow tables to pandas frames, the one way every reader and query hands them over."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

# DATE columns stay Arrow-backed. pandas' default makes each value a Python datetime.date
# object, and each later hand-over to DuckDB or Arrow converts them back one by one: about
# 2 s a scan of the 6.7 million carried events at a million tickets a day.
_ARROW_BACKED = {pa.date32(): pd.ArrowDtype(pa.date32())}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as a pandas frame, its DATE columns Arrow-backed."""
    return table.to_pandas(types_mapper=_ARROW_BACKED.get)
