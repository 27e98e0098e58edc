# Shared settings of the ShapesWorld GPU scripts (sourced, not run).
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-2}
CLI=(python -m pix2pix_zero shapesworld)
BIG=1000000  # step caps: the time limits decide
