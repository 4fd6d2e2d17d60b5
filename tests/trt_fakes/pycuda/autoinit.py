"""Like pycuda.autoinit: a new (non-primary) context, current on the importing thread only."""

from pycuda import driver

driver.init()
device = driver.Device(0)
context = device.make_context()
