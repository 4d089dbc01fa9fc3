// Package trainer is joule's built-in deep-learning trainer: it reads a
// dataset (CSV or MNIST IDX), cleans and preprocesses it, trains a
// multi-layer perceptron on a tensor backend, evaluates it, checkpoints it in
// the safetensors format and saves the model with its preprocessing so that
// it can serve predictions.
//
// One function shows the pipeline whole: Run (run.go); its training loop is
// trainLoop (loop.go).
//
// Layers, losses and optimisers talk to a Backend (backend.go), never to
// memory directly. The CPU backend (cpu.go) is float32, with GEMM from
// trainer/gemm (packed, cache-blocked, parallel, AVX-512/AVX2+FMA kernels or
// pure Go). The CUDA backend (cuda.go) runs the same operations on a GPU
// through trainer/internal/cuda, which loads the driver, cuBLAS and NVRTC at
// run time (no CUDA toolkit at build time) and compiles its kernels once per
// process; its arithmetic follows the CPU's operation by operation, so the
// two differ by GEMM rounding only. Run chooses the backend (chooseBackend):
// with the spec's device auto, CUDA when a GPU is usable (the first of the
// job's GPUs, by UUID, that CUDA sees), else the CPU, saying why in one log
// line; device cpu or cuda forces one. precision tf32 or bf16 makes the
// GPU's GEMMs use tensor cores (FP32 data; the CPU ignores it). The Backend
// methods return no errors: a CUDA failure is sticky, and the training loop
// checks it after every step and before every checkpoint.
//
// What the spec's words mean here:
//
//   - Data. CSV: a header row; a column is numeric when at least half of its
//     present values parse as numbers (the rest count as unparsable, i.e.
//     missing), otherwise it is one-hot encoded over the levels seen in
//     training. Missing means empty, NA, N/A, NaN, null, None or "?". Rows
//     without a label, and rows with a different number of fields than the
//     header, are always dropped; rows with missing features are dropped
//     (impute: drop) or filled with the training split's mean or median
//     (the most frequent level for strings). Both are counted in the
//     metrics. MNIST: pixels are byte/255; the t10k files are the test set.
//   - Task (auto): numeric labels that are all integers with at most 20
//     distinct values are classes, other numeric labels are regression;
//     string labels are classes; two classes make a binary task.
//     Regression targets are standardised for training and reported on
//     their own scale.
//   - Order of preprocessing, all fitted on the training split only:
//     impute, one-hot, variance threshold (keeps features whose variance is
//     above it; 0 turns it off), normalisation (z-score with the population
//     standard deviation, or min-max; a constant feature keeps scale 1),
//     PCA (centred; explained-variance ratios as scikit-learn's).
//   - Model: He-uniform initialisation for ReLU, Glorot-uniform for sigmoid
//     and tanh; inverted dropout after every hidden activation; losses are
//     batch means as in PyTorch (BCEWithLogits, CrossEntropy, MSE).
//   - Optimisers follow torch.optim: Adam (0.9, 0.999, 1e-8) and SGD with
//     momentum, weight decay added to the gradient (L2, not AdamW); the step
//     schedule is StepLR(step_epochs, gamma), cosine is CosineAnnealingLR
//     with T_max = epochs, both stepped per epoch.
//   - Early stopping stops after early_stopping epochs without a lower
//     validation loss and restores the best epoch's parameters (kept in the
//     checkpoint); the model and the metrics are that epoch's.
//   - Metrics are on the test set, else the validation set, else the
//     training set. Precision, recall and F1 are macro averages over the
//     classes (binary too), scikit-learn's with zero_division=0; the
//     confusion matrix has true classes as rows.
//   - Reproducibility: the seed fixes the split, the initialisation and,
//     per epoch e, PCG stream e for the shuffle and the dropout masks.
//     Results do not depend on the number of cores; they may differ in the
//     last bits between GEMM kernels (AVX-512, AVX2, pure Go, cuBLAS).
//   - Checkpoints (OutDir/checkpoint.safetensors) hold the parameters,
//     the optimiser's tensors, and in the metadata the loop state (epoch,
//     step, RNG state, early-stopping state) and the spec; they are written
//     at every epoch's end and on cancellation, atomically.
//
// trainer must not import scheduler, storage, web, agent, net/http or bbolt:
// it is a library that the agent's `agent train` child and schedulerd's
// predict endpoint call.
package trainer
