//! The C shim (`shim.c`) around `slurm_load_job()`, for what a Slurm 22.05 job_prolog
//! cannot learn otherwise: the job's end time and its array ids.

#[cfg(not(test))]
use std::ffi::{c_char, c_int, CStr};

/// `NO_VAL` from slurm.h: "not set" in 32-bit fields (array_task_id of a non-array job).
pub const NO_VAL: u32 = 0xffff_fffe;

/// What slurmctld says about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTimes {
    /// Expected end, seconds since the epoch; `None` when unknown.
    pub end_time: Option<u64>,
    /// `(array master id, task index)` for an array task.
    pub array: Option<(u32, u32)>,
}

impl JobTimes {
    fn from_raw(end_time: u64, array_job_id: u32, array_task_id: u32) -> JobTimes {
        JobTimes {
            end_time: (end_time > 0).then_some(end_time),
            // Detect arrays by the task id, never by the array job id: an srun or salloc job that
            // is no array has its own id as array job id (a batch job has 0).
            array: (array_task_id != NO_VAL && array_job_id != 0 && array_job_id != NO_VAL)
                .then_some((array_job_id, array_task_id)),
        }
    }
}

#[cfg(not(test))]
extern "C" {
    // SAFETY (declaration): these match the definitions in shim.c exactly: uint32_t is
    // u32, uint64_t is u64, int is c_int, `const char *` is *const c_char.
    fn aws_role_job_times(
        job_id: u32,
        end_time: *mut u64,
        array_job_id: *mut u32,
        array_task_id: *mut u32,
    ) -> c_int;
    fn aws_role_strerror(err: c_int) -> *const c_char;
    fn aws_role_prolog_epilog_timeout() -> std::ffi::c_uint;
}

/// Slurm's `PrologEpilogTimeout` in seconds, `None` when Slurm waits for ever (or its
/// configuration cannot be found in this process).
#[cfg(not(test))]
pub fn prolog_epilog_timeout() -> Option<u32> {
    // SAFETY: takes no arguments and only reads one field of libslurmfull's global
    // configuration, found with dlsym (NULL-checked in shim.c); slurmstepd has read that
    // configuration before any SPANK callback and does not change it during one.
    let t = unsafe { aws_role_prolog_epilog_timeout() };
    (t > 0).then_some(t)
}

/// Unit tests run outside Slurm.
#[cfg(test)]
pub fn prolog_epilog_timeout() -> Option<u32> {
    None
}

/// Asks slurmctld (one RPC, a few ms) for `job_id`'s end time and array ids.
#[cfg(not(test))]
pub fn job_times(job_id: u32) -> Result<JobTimes, String> {
    let mut end_time: u64 = 0;
    let mut array_job_id: u32 = 0;
    let mut array_task_id: u32 = NO_VAL;
    // SAFETY: the three pointers come from live, properly aligned locals that outlive the
    // call, and shim.c writes at most one value of the declared type through each. The
    // shim does its own allocation and frees it (slurm_free_job_info_msg) before
    // returning; no pointer into Slurm's memory escapes. slurm_load_job() is resolved
    // from the host's libslurmfull: job_prolog runs in slurmstepd, which links it and
    // has initialised its Slurm configuration.
    let rc =
        unsafe { aws_role_job_times(job_id, &mut end_time, &mut array_job_id, &mut array_task_id) };
    match rc {
        0 => Ok(JobTimes::from_raw(end_time, array_job_id, array_task_id)),
        -1 => Err(format!("slurmctld returned no record for job {job_id}")),
        -2 => Err("slurm_load_job failed without an error number".to_string()),
        err => {
            // SAFETY: aws_role_strerror never returns NULL (shim.c falls back to a string
            // literal); slurm_strerror returns pointers to static strings, valid for the
            // life of the process, and we copy the text out at once.
            let text = unsafe { CStr::from_ptr(aws_role_strerror(err)) };
            Err(format!(
                "slurm_load_job failed: {} (error {err})",
                text.to_string_lossy()
            ))
        }
    }
}

/// Unit tests run outside Slurm: there is no slurmctld to ask.
#[cfg(test)]
pub fn job_times(_job_id: u32) -> Result<JobTimes, String> {
    Err("no Slurm in unit tests".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_detected_by_task_id() {
        let j = JobTimes::from_raw(1_800_000_000, 5, 0);
        assert_eq!(j.array, Some((5, 0)));
        assert_eq!(j.end_time, Some(1_800_000_000));
        // Non-array sbatch job: array_job_id 0; srun job: array_job_id = its own id.
        assert_eq!(JobTimes::from_raw(1, 0, NO_VAL).array, None);
        assert_eq!(JobTimes::from_raw(1, 9, NO_VAL).array, None);
        assert_eq!(JobTimes::from_raw(0, 9, NO_VAL).end_time, None);
    }
}
