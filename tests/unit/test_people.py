"""The labels faces make (indexer.model.people): what a person searching `portrait`, `people` or
`group` expects of the faces found."""

from indexer.model.people import face_labels


def face(top: float, height: float, score: float = 0.99, left: float = 0.4) -> tuple[float, ...]:
    return (left, top, left + height * 0.75, top + height, score)


def names(*faces) -> set[str]:
    return {lb.name for lb in face_labels(faces)}


def test_one_face_a_sixth_of_the_height_or_more_is_a_portrait():
    assert names(face(0.2, 0.4)) == {"person", "face", "portrait"}
    assert names(face(0.3, 0.17)) == {"person", "face", "portrait"}  # a woman standing, cut at the knees


def test_a_whole_standing_figure_or_a_face_in_a_crowd_is_no_portrait():
    assert names(face(0.1, 0.08)) == {"person", "face"}


def test_a_couple_is_people_and_no_portrait():
    assert names(face(0.2, 0.35), face(0.25, 0.33, left=0.1)) == {"person", "face", "people"}


def test_a_portrait_keeps_its_label_with_someone_small_in_the_background():
    assert names(face(0.2, 0.4), face(0.1, 0.1, left=0.05)) == {"person", "face", "portrait", "people"}


def test_three_faces_are_a_group_never_a_portrait():
    found = names(face(0.2, 0.5), face(0.1, 0.1, left=0.05), face(0.1, 0.1, left=0.85))
    assert found == {"person", "face", "people", "group"}


def test_faces_the_detector_is_unsure_of_do_not_count():
    assert names(face(0.2, 0.4, score=0.8)) == set()
    assert names(face(0.2, 0.4), face(0.2, 0.38, score=0.85, left=0.05)) == {"person", "face", "portrait"}
