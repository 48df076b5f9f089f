"""SGLang's CUDA path (its Triton hash kernels), in one place, from leaf to top:

* :mod:`.constants`: the schemes' fixed numbers and the finaliser (the leaf);
* :mod:`.emulation`: the bit-exact CPU emulation of the kernels (the ``gpu-*`` schemes on a
  :class:`~pytest_mmhash.schemes.ByteStream`), with its numpy reference backend;
* :mod:`.numba_backend` and :mod:`.numba_kernels`: the same maths compiled by numba, on every core;
* :mod:`.triton_kernels`: this project's own Triton kernels (a GPU, or Triton's interpreter);
* :mod:`.on_device`: hashing tensors that already live on a CUDA device with those kernels.

Nothing here is imported by importing the package itself.
"""
