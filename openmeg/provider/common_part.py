"""The common part of an aggregate building: what its main meter measures that no owner's
sub-meter does (corridors, lifts, the heating plant).

The main meter measures the whole building, the owners' sub-meters included, so billing the
association on the main meter would bill every owner's kWh twice. The association is billed
for the common part only, interval by interval::

    net_common = (import_main - export_main) - sum over sub-meters (import_sub - export_sub)
    import_common = max(net_common, 0)     export_common = max(-net_common, 0)

Netting each interval first means an owner's export that another owner or the common load
uses within the interval is neither billed nor credited to the association. ``net_common`` is
rounded to 1e-9 kWh so that float noise is not billed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def common_part(
    main_import_kwh: FloatArray,
    main_export_kwh: FloatArray,
    sub_import_kwh: FloatArray,
    sub_export_kwh: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """The common part's import and export per interval.

    Parameters
    ----------
    main_import_kwh, main_export_kwh
        The main meter's energies per interval [kWh], shape ``[n_intervals]``.
    sub_import_kwh, sub_export_kwh
        The sub-meters' energies per interval [kWh], shape ``[n_sub_meters, n_intervals]``.

    Returns
    -------
    tuple of numpy.ndarray
        Import and export of the common part [kWh], shape ``[n_intervals]``, both >= 0 and
        never both > 0 in one interval.
    """
    subs = np.atleast_2d(sub_import_kwh) - np.atleast_2d(sub_export_kwh)
    net = np.round((main_import_kwh - main_export_kwh) - subs.sum(axis=0), 9)
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)
