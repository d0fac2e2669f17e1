"""Keep numba's threads in step with torch's.

numba's OpenMP layer shares the OpenMP runtime with torch, and starting it resets the
runtime's thread count to numba's (all cores by default): OMP_NUM_THREADS=1 silently
became 2 in the middle of the first run of a process, and float results depended on
that.  So the layer is started here, once, and torch's count is put back; every kernel
launch then goes through ``sync_threads()``, which gives numba torch's current count.
"""

import numba
import torch
from numba.np.ufunc import parallel as _parallel

_threads = torch.get_num_threads()
_parallel._launch_threads()
torch.set_num_threads(_threads)


def sync_threads() -> None:
    n = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
