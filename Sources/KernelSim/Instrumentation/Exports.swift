// The Interlocked routines are C (KernelSimInstrumentation/Interlocked.c), so that the access they
// report is at the learner's instruction; every chapter program sees them through KernelSim.
@_exported import KernelSimInstrumentation
