use super::*;
use std::io::Write;

/// A CSV file with `text` in a fresh temporary directory (kept alive by the returned guard).
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.csv");
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    (dir, path)
}

#[test]
fn iris_from_the_bundled_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/iris.csv");
    let (iris, classes) = CsvReader::new(path).target("species").classification::<f32, 4>().unwrap();
    assert_eq!(iris.len(), 150);
    assert_eq!(classes.names(), &["0", "1", "2"]);
    assert_eq!(iris.features().column(0).as_slice(), &[5.1, 3.5, 1.4, 0.2]);
    assert_eq!(iris.targets().iter().filter(|&&l| l == 2).count(), 50);
    // The default target is the last column; by position, the same.
    let (by_default, _) = CsvReader::new(path).classification::<f32, 4>().unwrap();
    let (by_index, _) = read_classification::<f32, 4>(path, 4).unwrap();
    assert_eq!(by_default.targets(), iris.targets());
    assert_eq!(by_index.features(), iris.features());
}

#[test]
fn string_labels_are_numbered_in_sorted_order() {
    let (_dir, path) = file("name,x,y\nvirginica, 1.5,2\nsetosa,3,4e-1\nversicolor,-5,6\nsetosa,0,0\n");
    let (d, classes) = CsvReader::new(&path).target("name").classification::<f64, 2>().unwrap();
    assert_eq!(classes.names(), &["setosa", "versicolor", "virginica"]);
    assert_eq!(classes.index("virginica"), Some(2));
    assert_eq!(classes.name(1), Some("versicolor"));
    assert_eq!(d.targets(), &vec![2, 0, 1, 0]);
    assert_eq!(d.features().as_slice(), &[1.5, 2.0, 3.0, 0.4, -5.0, 6.0, 0.0, 0.0]);
    // Integers read as names when asked.
    let (_dir2, path) = file("3,1.0\n1,2.0\n10,3.0\n");
    let reader = CsvReader::new(&path).header(false).target(0);
    let (d, classes) = reader.clone().labels(LabelKind::Names).classification::<f32, 1>().unwrap();
    assert_eq!(classes.names(), &["1", "10", "3"]);
    assert_eq!(d.targets(), &vec![2, 0, 1]);
    let (d, classes) = reader.classification::<f32, 1>().unwrap();
    assert_eq!((d.targets(), classes.len()), (&vec![3, 1, 10], 11));
}

#[test]
fn bad_cells_name_line_and_column() {
    let (_dir, path) = file("a,b,label\n1,2,0\n3,oops,1\n");
    let err = CsvReader::new(&path).classification::<f32, 2>().unwrap_err();
    assert!(
        matches!(&err, Error::Cell { line: 3, column, value, .. } if column == "`b` (2)" && value == "oops")
    );
    assert!(err.to_string().ends_with("data.csv: line 3, column `b` (2): \"oops\" is not a number"), "{err}");
    let (_dir, path) = file("1,2,0\n3,inf,1\n");
    let err = CsvReader::new(&path).header(false).classification::<f32, 2>().unwrap_err();
    assert!(matches!(&err, Error::Cell { line: 2, column, .. } if column == "2"), "{err}");
    assert!(err.to_string().contains("is not a finite number"), "{err}");
    let (_dir, path) = file("a,label\n1,0\n2,x\n");
    let err = CsvReader::new(&path).labels(LabelKind::Integers).classification::<f32, 1>().unwrap_err();
    assert!(matches!(&err, Error::Cell { line: 3, column, .. } if column == "`label` (2)"), "{err}");
}

#[test]
fn shape_and_column_mistakes() {
    let (_dir, path) = file("a,b,c\n1,2,0\n3,4\n");
    let err = CsvReader::new(&path).classification::<f32, 2>().unwrap_err();
    assert!(
        matches!(err, Error::Format { .. }) && err.to_string().contains("line 3: a row of 2 cells"),
        "{err}"
    );
    let (_dir, path) = file("a,b,c\n1,2,0\n");
    let err = CsvReader::new(&path).classification::<f32, 3>().unwrap_err();
    assert!(
        matches!(err, Error::Shape { .. }) && err.to_string().contains("expected 3 columns, found 2"),
        "{err}"
    );
    let err = CsvReader::new(&path).target("label").classification::<f32, 2>().unwrap_err();
    assert!(err.to_string().contains("no column named `label`; the columns are a, b, c"), "{err}");
    let err = CsvReader::new(&path).header(false).target("c").classification::<f32, 2>().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    assert!(CsvReader::new(&path).target(7).classification::<f32, 2>().is_err());
    let (_dir, path) = file("a,b\n");
    assert!(CsvReader::new(&path)
        .classification::<f32, 1>()
        .unwrap_err()
        .to_string()
        .contains("no data rows"));
    let missing = CsvReader::new("/nonexistent/x.csv").classification::<f32, 1>().unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
}

#[test]
fn regression_targets_and_plain_features() {
    let (_dir, path) = file("y1;x;y2\n1;10;2\n3;20;4\n");
    let reader = CsvReader::new(&path).delimiter(b';').targets(["y1", "y2"]);
    let d = reader.regression::<f32, 1, 2>().unwrap();
    assert_eq!(d.features().as_slice(), &[10.0, 20.0]);
    assert_eq!(d.targets().as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    let d = CsvReader::new(&path).delimiter(b';').regression::<f32, 1, 2>().unwrap();
    assert_eq!(d.targets().as_slice(), &[10.0, 2.0, 20.0, 4.0]);
    let x = CsvReader::new(&path).delimiter(b';').features::<f64, 3>().unwrap();
    assert_eq!(x.column(1).as_slice(), &[3.0, 20.0, 4.0]);
    assert!(matches!(reader.regression::<f32, 1, 1>(), Err(Error::InvalidConfig(_))));
}
