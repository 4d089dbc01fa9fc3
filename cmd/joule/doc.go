// Command joule is the user CLI of the joule scheduler: submit jobs, watch the
// queue, read a job's status, cancel it and look at the nodes' GPUs.
//
//	joule submit job.yaml
//	joule queue [--all] [-o json]
//	joule status j-7 [-o json]
//	joule cancel j-7
//	joule nodes [-o json]
//
// It talks to schedulerd only through web/client, and uses only the standard
// library besides (flag, text/tabwriter). It must not import scheduler,
// storage, power, trainer or agent: everything it knows comes over HTTP.
package main
