/* bench/spank-min.c: the least a SPANK plugin with job_prolog/job_epilog can be.
 *
 * Section 4 of bench/run.sh loads it in place of aws_role.so. Exporting these two symbols is
 * what makes slurmd start a `slurmstepd spank prolog` and `... epilog` process for every job
 * (measured on 22.05 and 24.11), whatever the callbacks do; these do nothing. The difference between this
 * configuration and "no plugin" is Slurm's own price for the hooks; the difference between it
 * and aws_role.so without a role is aws-role's.
 */
#include <slurm/spank.h>

SPANK_PLUGIN(bench_min, 1);

int slurm_spank_job_prolog(spank_t sp, int ac, char **av) { (void)sp; (void)ac; (void)av; return 0; }
int slurm_spank_job_epilog(spank_t sp, int ac, char **av) { (void)sp; (void)ac; (void)av; return 0; }
