import HeadlightCLI
import Inference

// Choose (and verify) the OpenBLAS kernel before any real work; this may re-exec the process.
BLASRuntime.prepareProcess()
HeadlightMain.run()
