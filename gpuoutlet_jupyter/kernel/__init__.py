"""The gpuoutlet-ssh kernel provisioner, its remote wrapper and kernelspec files."""
