/*
 * aws-role SPANK plugin: the one thing SPANK 22.05 cannot tell a job_prolog.
 *
 * Slurm 22.05 gives neither the Prolog environment nor SPANK the job's end time or its
 * array task id (S_JOB_ARRAY_TASK_ID is not available in job_prolog). slurm_load_job() can: one RPC to slurmctld,
 * 2-7 ms. The Slurm symbols stay undefined here and resolve from the host process's
 * libslurmfull (slurmd, slurmstepd, srun, sbatch all link it); the plugin never links
 * libslurm itself.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stddef.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

/*
 * Looks up job `job_id` and stores its expected end time (seconds since the epoch, 0
 * when unknown), its array master id and its array task id (NO_VAL when the job is not
 * an array task).
 *
 * Returns 0 on success; -1 if slurmctld does not know the job (no record with this id);
 * -2 if the RPC failed without an error number; otherwise the Slurm error number of the
 * failed RPC (> 0).
 *
 * Asking for an array master id returns every remaining task of the array, so the record
 * whose own job_id is `job_id` is picked. The outputs are written only on success.
 */
int aws_role_job_times(uint32_t job_id, uint64_t *end_time, uint32_t *array_job_id,
		       uint32_t *array_task_id)
{
	job_info_msg_t *msg = NULL;
	int rc = -1;
	uint32_t i;

	if (end_time == NULL || array_job_id == NULL || array_task_id == NULL)
		return -2;
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(23, 2, 0)
	/*
	 * The `slurmstepd spank prolog` process that runs job_prolog has not loaded the
	 * client plugins an RPC needs: on 24.11 slurm_load_job() then dies with "fatal: No
	 * hash plugins loaded. Was slurm_init() called before calling any Slurm API
	 * functions?", the prolog fails and the node drains. slurm_init() loads them
	 * (each plugin type only once) and keeps the configuration slurmstepd has read.
	 * 22.05 needs none of this. (23.02 is when the hash plugins came; only 22.05 and
	 * 24.11 were tried.)
	 */
	slurm_init(NULL);
#endif
	if (slurm_load_job(&msg, job_id, SHOW_DETAIL) != SLURM_SUCCESS || msg == NULL) {
		/* errno, not slurm_get_errno(): that function is gone from Slurm 24.11's
		 * headers, and in 22.05 it only returned errno. */
		int err = errno;
		if (msg != NULL)
			slurm_free_job_info_msg(msg);
		return err > 0 ? err : -2;
	}
	for (i = 0; i < msg->record_count; i++) {
		const slurm_job_info_t *job = &msg->job_array[i];
		if (job->job_id != job_id)
			continue;
		*end_time = job->end_time > 0 ? (uint64_t)job->end_time : 0;
		*array_job_id = job->array_job_id;
		*array_task_id = job->array_task_id;
		rc = 0;
		break;
	}
	slurm_free_job_info_msg(msg);
	return rc;
}

/* Slurm's text for an error number returned above (never NULL). */
const char *aws_role_strerror(int err)
{
	const char *s = slurm_strerror(err);
	return s != NULL ? s : "unknown Slurm error";
}

/*
 * Slurm's PrologEpilogTimeout as the host process (slurmstepd) has configured it, in
 * seconds; 0 when it has none (unset: Slurm waits for ever) or the configuration cannot be
 * found. Slurm kills a job_prolog/job_epilog that runs longer, requeues the job and drains
 * the node (slurm.conf(5)), so the plugin must end its prolog before this.
 *
 * `slurm_conf` is libslurmfull's global configuration, which slurmstepd has read before
 * it runs SPANK callbacks. It is looked up with dlsym at call time, not referenced: a data
 * symbol is resolved when the plugin is loaded, and a process without it (a client that
 * does not link libslurmfull) would then fail to load the plugin at all. Its layout is
 * that of the slurm.h this plugin is built against, which is the running Slurm's (a
 * plugin only loads into the release it was built for).
 */
unsigned int aws_role_prolog_epilog_timeout(void)
{
	const slurm_conf_t *conf = dlsym(RTLD_DEFAULT, "slurm_conf");
	uint16_t t;

	if (conf == NULL)
		return 0;
	t = conf->prolog_epilog_timeout;
	/* NO_VAL16 (unset) and INFINITE16: no limit. */
	if (t == 0 || t == (uint16_t)NO_VAL16 || t == (uint16_t)INFINITE16)
		return 0;
	return t;
}
