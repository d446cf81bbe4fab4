"""Teachers: the Piper (VITS) voice cut into modules; the Tacotron 2 adapter."""
from kdtts.teachers.piper import PiperTeacher, TeacherOutput

__all__ = ["PiperTeacher", "TeacherOutput"]
