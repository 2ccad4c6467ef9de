"""Load tests and the side-by-side benchmark of dicom-api (see ``python -m loadtests.bench -h``)."""
