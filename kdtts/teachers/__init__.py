"""Teachers: the voices students are distilled from."""
from kdtts.teachers.piper import PiperTeacher, Scales, TeacherOutput

__all__ = ["PiperTeacher", "Scales", "TeacherOutput"]
