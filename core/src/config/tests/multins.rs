//! Restore tests of several source namespaces: `{{namespace:SOURCE}}`, a
//! data job's `namespace`, and what `validate` refuses about them.

use super::*;

const BASE: &str = "[[restore]]\nname = \"shop\"\nnamespaces = [\"shop\", \"shop-data\"]\nevery = \"24h\"\nschedule = \"s\"\n";

#[test]
fn multins_templates_and_jobs_may_name_a_source_namespace() {
    let config = load_ok(&format!(
        "{BASE}[[restore.check]]\nname = \"db\"\ncomponent = \"c.wasm\"\n\
         targets = [\"http://db.{{{{namespace:shop-data}}}}.svc.cluster.local:5432\", \"http://api.{{{{namespace}}}}.svc.cluster.local:8080\"]\n\
         allow = [\"{{target}}\"]\n\
         [[restore.job]]\nname = \"orders\"\nimage = \"postgres:17\"\nnamespace = \"shop-data\"\n\
         command = [\"psql\", \"-h\", \"db.{{{{namespace:shop-data}}}}.svc\"]\n\
         [[restore.job]]\nname = \"api\"\nimage = \"curlimages/curl:8.11.0\"\ncommand = [\"curl\", \"http://api\"]\n"
    ));
    let r = &config.restores[0];
    assert_eq!(r.source_namespaces, ["shop", "shop-data"]);
    let jobs = &r.acceptance.jobs;
    assert_eq!(jobs[0].namespace.as_deref(), Some("shop-data"));
    assert_eq!(jobs[1].namespace, None, "default: the first source's copy");
    // No warning: a target in any of the run's namespaces is reachable.
    assert!(
        config
            .warnings
            .iter()
            .all(|w| !w.to_string().contains("targets")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn multins_an_unknown_source_in_a_template_is_refused_with_line_and_key() {
    let check = "[[restore.check]]\nname = \"c\"\ncomponent = \"c.wasm\"\n";
    one_error(
        &format!(
            "{BASE}{check}targets = [\"http://db.{{{{namespace:billing}}}}.svc:5432\"]\nallow = [\"{{target}}\"]\n"
        ),
        9,
        "targets",
        "{{namespace:billing}} names \"billing\", which this restore test does not restore: the source namespaces are shop, shop-data",
    );
    one_error(
        &format!("{BASE}edge_target = \"https://{{{{namespace:shop-db}}}}.example.com\"\n"),
        6,
        "edge_target",
        "names \"shop-db\"",
    );
    let job = "[[restore.job]]\nname = \"j\"\nimage = \"postgres:17\"\n";
    one_error(
        &format!("{BASE}{job}command = [\"psql\", \"-h\", \"db.{{{{namespace:billing}}}}.svc\"]\n"),
        9,
        "job.command",
        "names \"billing\"",
    );
    one_error(
        &format!(
            "{BASE}{job}command = [\"true\"]\nenv = {{ PGHOST = \"db.{{{{namespace:data}}}}\" }}\n"
        ),
        10,
        "job.env.PGHOST",
        "names \"data\"",
    );
    one_error(
        &format!("{BASE}{job}command = [\"true\"]\nnamespace = \"billing\"\n"),
        10,
        "job.namespace",
        "job namespace \"billing\" is not restored: name one of the restore test's namespaces (shop, shop-data)",
    );
}

#[test]
fn multins_a_source_namespace_listed_twice_is_refused() {
    one_error(
        "[[restore]]\nname = \"r\"\nnamespaces = [\"shop\", \"shop\"]\nevery = \"24h\"\nschedule = \"s\"\n",
        3,
        "namespaces",
        "namespace \"shop\" is listed twice",
    );
}
