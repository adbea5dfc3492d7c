"""Device models: I–V laws in numpy/torch and the subcircuits placed at crosspoints."""

from spicecross.devices.laws import LAWS, V_REF_DEFAULT, DeviceLaw, get_law
from spicecross.devices.library import DeviceModel, builtin_device, get_device, load_subckt_device

__all__ = ["LAWS", "V_REF_DEFAULT", "DeviceLaw", "DeviceModel", "builtin_device", "get_device",
           "get_law", "load_subckt_device"]
