"""Like pycuda.autoprimaryctx: the device's primary context, pushed on the importing thread."""

from pycuda import driver

driver.init()
device = driver.Device(0)
context = device.retain_primary_context()
context.push()
