// Package cuda drives an NVIDIA GPU for the trainer without a CUDA toolkit at
// build time: it loads the driver (libcuda.so.1), cuBLAS (libcublas.so.13,
// then .12) and NVRTC (libnvrtc.so.13, then .12) at run time with purego,
// compiles its kernels (kernels.go, CUDA C embedded in the binary) once per
// process with NVRTC for the device's compute capability, and launches them
// with cuLaunchKernel.
//
// Every symbol is looked up before it is bound, so a library without it is
// an error naming the symbol, never a panic. One goroutine, locked to its OS
// thread, owns the CUDA context: every driver, cuBLAS and NVRTC call runs on
// it (Device.do and Device.call). Operations that return nothing are queued
// and run asynchronously on one compute stream; uploads go through pinned
// host memory on a second stream, double-buffered, so that a batch's copy
// overlaps the previous step's compute (see Buffer.Upload). The first error
// is sticky: later operations are skipped and Device.Err reports it.
//
// JOULE_CUDA_LIB_DIR (a colon-separated list of directories) makes the
// loader look there instead of the system's library path; the tests point
// it at stand-in libraries built with gcc (package cuda/standin).
//
// This package knows nothing of the trainer's tensors: it deals in device
// pointers. It must not import the rest of joule.
package cuda
