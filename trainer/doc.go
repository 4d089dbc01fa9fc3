// Package trainer is joule's built-in deep-learning trainer: it reads a
// dataset (CSV or MNIST IDX), cleans and preprocesses it, trains a
// multi-layer perceptron on a tensor backend, evaluates it, checkpoints it in
// the safetensors format and saves the model with its preprocessing so that
// it can serve predictions.
//
// One function shows the pipeline whole: Run (run.go).
//
// Layers, losses and optimisers talk to a Backend (backend.go), never to
// memory directly, so that a CUDA backend can be added without touching them;
// the CPU backend (cpu.go) is float32 and parallel across cores.
//
// trainer must not import scheduler, storage, web, agent, net/http or bbolt:
// it is a library that the agent's `agent train` child and schedulerd's
// predict endpoint call.
package trainer
