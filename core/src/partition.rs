//! AWS partitions: which one a region is in, and which ones an ARN may name.
//!
//! STS in one partition cannot assume a role of another, so the map's region and every ARN
//! in it must agree. The table follows the partitions of the SDK's endpoint rules (the
//! `regionRegex` of each); a test in `sts/mod.rs` checks every entry against the SDK's own
//! resolver, so the two cannot drift apart unnoticed.

/// Every partition aws-role knows, with a region of each (for messages and tests).
pub const PARTITIONS: &[(&str, &str)] = &[
    ("aws", "us-east-1"),
    ("aws-cn", "cn-north-1"),
    ("aws-us-gov", "us-gov-west-1"),
    ("aws-iso", "us-iso-east-1"),
    ("aws-iso-b", "us-isob-east-1"),
    ("aws-iso-e", "eu-isoe-west-1"),
    ("aws-iso-f", "us-isof-south-1"),
    ("aws-eusc", "eusc-de-east-1"),
];

/// Region name prefixes of the partitions other than `aws`, longest first where one
/// prefix starts another (`us-isob-` before `us-iso-`, which has no match in `us-isof-`).
const PREFIXES: &[(&str, &str)] = &[
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
    ("cn-", "aws-cn"),
];

/// The first part of a region of the `aws` partition (`^(us|eu|ap|...)-\w+-\d+$`).
const AWS_AREAS: &[&str] = &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"];

/// The partition of `region` (already of the shape `xx-name-1`), or `None` when it is in
/// none that aws-role knows.
pub fn of_region(region: &str) -> Option<&'static str> {
    if let Some(&(_, p)) = PREFIXES.iter().find(|(pre, _)| region.starts_with(pre)) {
        return Some(p);
    }
    let area = region.split('-').next()?;
    AWS_AREAS.contains(&area).then_some("aws")
}

/// Whether `partition` is one of [`PARTITIONS`].
pub fn is_known(partition: &str) -> bool {
    PARTITIONS.iter().any(|&(p, _)| p == partition)
}

/// The known partitions, for a message: "aws, aws-cn, …".
pub fn names() -> String {
    PARTITIONS
        .iter()
        .map(|&(p, _)| p)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_is_in_its_partition() {
        for &(p, region) in PARTITIONS {
            assert_eq!(of_region(region), Some(p), "{region}");
            assert!(is_known(p));
        }
        for (region, p) in [
            ("eu-central-1", "aws"),
            ("il-central-1", "aws"),
            ("mx-central-1", "aws"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-west-1", "aws-iso"),
            ("us-isob-west-1", "aws-iso-b"),
            ("us-isof-east-1", "aws-iso-f"),
            ("cn-northwest-1", "aws-cn"),
        ] {
            assert_eq!(of_region(region), Some(p), "{region}");
        }
        for unknown in ["xx-east-1", "moon-base-1", "usa-east-1"] {
            assert_eq!(of_region(unknown), None, "{unknown}");
        }
        assert!(!is_known("aws-moon"));
        assert!(names().starts_with("aws, aws-cn, aws-us-gov"));
    }
}
