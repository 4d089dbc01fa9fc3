// Package agent is the node agent's runtime: it registers with schedulerd,
// sends a heartbeat with every GPU's telemetry and every job's state, and
// reconciles the node toward the desired state in each reply: it starts the
// jobs placed on it (train jobs as child processes of the same binary, so a
// trainer crash never takes the agent down), stops cancelled ones, sets power
// limits and reports exits with their reasons.
//
// Jobs read datasets only under the agent's data root (dataroot.go: symlinks
// resolved, a path leading out fails the job with a reason). Job directories
// live in the jobs dir, which nodes may share so that a requeued train job
// resumes from its checkpoint on another node.
//
// GPUs are reached only through power (NVML, real or simulated).
package agent
