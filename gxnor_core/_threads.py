"""numba's OpenMP threading layer shares the OpenMP runtime with torch and resets its thread
count (OMP_NUM_THREADS=1 silently became 2 mid-run, and results depended on when).  Its own
work-queue threads leave torch alone; our kernels' results do not depend on thread count."""

import numba

numba.config.THREADING_LAYER = "workqueue"
