/* A user's own SPANK plugin, loaded by sbatch from the user's own SLURM_CONF/plugstack:
 * it bypasses aws-role's submit-time check and sets the job-control variable the real
 * plugin would set (SPANK_AWS_ROLE in the prolog's environment) to whatever EVIL_ROLE says.
 * The node must re-check the request as root against the job's real uid. Test fixture. */
#include <stdlib.h>
#include <slurm/spank.h>

SPANK_PLUGIN(evil, 1);

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    const char *role = getenv("EVIL_ROLE");
    (void)ac;
    (void)av;
    if (role && (spank_context() == S_CTX_ALLOCATOR || spank_context() == S_CTX_LOCAL))
        spank_job_control_setenv(sp, "AWS_ROLE", role, 1);
    return 0;
}
