"""Pure forecasting science (numpy/scipy only): schedules, laws, fitting, trajectories.

Every fit here is small (a few hundred points, a handful of parameters) and a forecast makes
thousands of them, so BLAS threads only contend, with each other and with the other jobs of the
machine: scipy's L-BFGS-B (1.15 on; the scaling fits use it, the curve fits did) took 24 ms
per 5-parameter solve with OpenBLAS's default threads on a busy 2-core machine, against 2.7 ms
on one thread. Whichever process imports the science, worker, embedded server, benchmark or
test, runs its BLAS on one thread.
"""

import scipy.optimize  # noqa: F401  (loads scipy's own OpenBLAS, so the limit reaches it too)
from threadpoolctl import threadpool_limits

threadpool_limits(1)
