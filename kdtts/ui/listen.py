"""The Listen tab, a blind A/B test (kdtts.ui.listening): random prompt, random sides, hidden names
until the vote, both clips played first. Its API endpoints: /next_pair, /played (token, side), /vote,
/results and /export_csv (both take an optional class session code).

On a Space, listeners may sign in with Hugging Face: their votes make the public leaderboard, and
anonymous votes are kept apart. Rater ids are salted hashes (a per-deployment secret), so the public
CSV cannot be turned back into addresses or account names.
"""
from __future__ import annotations

import hashlib
import hmac
import time

import gradio as gr

from kdtts.ui import settings
from kdtts.ui.compare import SYNTH, SYNTH_LIMIT
from kdtts.ui.errors import friendly
from kdtts.ui.limits import RateLimiter, visitor
from kdtts.ui.listening import TEACHER, Listening, Visitor
from kdtts.ui.service import NO_STUDENT, Service
from kdtts.ui.votes import GOLD, VoteStore, markdown, split_markdown, summarise


def rater_id(secret: bytes, who: str) -> str:
    """An opaque, stable id for a listener: HMAC-SHA256 of who they are under the deployment's secret."""
    return hmac.new(secret, who.encode(), hashlib.sha256).hexdigest()[:16]


def _shown(system: str) -> str:
    """A system's name for people: 'teacher', 'Griffin-Lim (low anchor)', 'student (checkpoint name)' or the
    module mix 'teacher front + student decoder (checkpoint name)'."""
    if system.startswith("student:"):
        return f"student ({system.split(':')[1]})"
    if system.startswith("mix:"):
        return f"teacher front + student decoder ({system.split(':')[1]})"
    return {TEACHER: TEACHER, GOLD: "a gold check (deliberately degraded)"}.get(system, "Griffin-Lim (low anchor)")


class ListenTab:
    def __init__(self, service: Service, prompts: list[str]) -> None:
        self.service = service
        self.votes = VoteStore(service.data / "votes.sqlite")
        self.listening = Listening(service, self.votes, prompts)
        self.vote_limit = RateLimiter(settings.votes_per_minute(), 60, "votes")
        self.secret = settings.secret(service.data)
        self.sign_in = settings.on_space()  # Hugging Face sign-in is offered (and counted apart) on a Space

    def do_next_pair(self, visitor: Visitor | None = None):
        visitor = visitor if isinstance(visitor, Visitor) else Visitor()
        pair = self.listening.next_pair(visitor)
        return pair.token, f"### “{pair.text}”", pair.wav_a, pair.wav_b, visitor

    def do_played(self, token, side):
        self.listening.played(str(token), str(side))

    def do_vote(self, token, choice, mos_a=None, mos_b=None, session="", request: gr.Request = None,
                profile: gr.OAuthProfile | None = None):
        address = visitor(request)
        self.vote_limit.hit(address)
        choice = {"no preference": "none", "a": "A", "b": "B"}.get(str(choice).strip().lower(), choice)
        if not token:
            raise ValueError("Load a pair first.")
        if choice not in ("A", "B", "none"):
            raise ValueError("Pick A, B or no preference.")
        account = getattr(profile, "username", None) if self.sign_in else None
        session_hash = getattr(request, "session_hash", "") or ""  # classmates behind one address stay apart
        rater = rater_id(self.secret, f"hf:{account}" if account else f"page:{address}:{session_hash}")
        vote_id, pair = self.listening.vote(token, choice, mos_a, mos_b, session, rater, signed_in=bool(account))
        return (f"Thanks! Vote #{vote_id} recorded. A was **{_shown(pair.system_a)}**, "
                f"B was **{_shown(pair.system_b)}**. A new pair is loading.")

    def do_results(self, session=""):
        rows = self.votes.rows((session or "").strip() or None)
        return split_markdown(rows) if self.sign_in else markdown(summarise(rows))

    def do_export(self, session=""):
        code = (session or "").strip() or None
        name = f"votes-{code + '-' if code else ''}{time.strftime('%Y%m%d-%H%M%S')}.csv"
        return str(self.votes.csv(self.service.out_dir / name.replace("/", "_"), code))

    def build(self, demo: gr.Blocks) -> None:
        gr.Markdown("**Blind test.** Two readings of the same sentence by two systems (the teacher, a student, or "
                    "a deliberately poor vocoder), in random order. Play both, say which you prefer, and rate each "
                    "from 1 (bad) to 5 (excellent); the names appear after your vote.")
        if not self.listening.ready:
            gr.Markdown(f"⚠️ {NO_STUDENT}")
        if self.sign_in:
            with gr.Row():
                gr.LoginButton()
                gr.Markdown("Sign in with Hugging Face for your votes to count on the public leaderboard; "
                            "anonymous votes are kept apart.")
        session = gr.Textbox("", label="class session code (optional)", max_lines=1,
                             placeholder="e.g. tts-101-monday: your votes can then be analysed apart")
        token = gr.Textbox(visible=False, label="pair token")
        prompt_md = gr.Markdown(label="prompt")
        with gr.Row():
            with gr.Column():
                audio_a = gr.Audio(label="A", type="filepath", interactive=False, elem_id="listen-a")
                mos_a = gr.Radio([1, 2, 3, 4, 5], label="rating of A (1–5)")
            with gr.Column():
                audio_b = gr.Audio(label="B", type="filepath", interactive=False, elem_id="listen-b")
                mos_b = gr.Radio([1, 2, 3, 4, 5], label="rating of B (1–5)")
        choice = gr.Radio(["A", "B", "no preference"], label="which do you prefer?")
        with gr.Row():
            vote_btn = gr.Button("Submit vote", variant="primary", elem_id="vote-btn")
            new_pair = gr.Button("New pair")
        vote_msg = gr.Markdown(label="vote result", elem_id="vote-msg")
        drawn = gr.State(None)
        pair = [token, prompt_md, audio_a, audio_b, drawn]
        synth = {"concurrency_id": SYNTH, "concurrency_limit": SYNTH_LIMIT}
        for audio, side in ((audio_a, "A"), (audio_b, "B")):
            audio.play(lambda t, s=side: self.do_played(t, s), token, None, api_visibility="private", queue=False)
        side = gr.Radio(["A", "B"], visible=False, label="side")
        gr.Button(visible=False).click(friendly(self.do_played), [token, side], None, api_name="played")
        new_pair.click(friendly(self.do_next_pair), drawn, pair, api_name="next_pair", **synth)
        vote_btn.click(friendly(self.do_vote), [token, choice, mos_a, mos_b, session], vote_msg, api_name="vote",
                       concurrency_id="votes", concurrency_limit=8).success(
            friendly(self.do_next_pair), drawn, pair, api_visibility="private", **synth).then(
            lambda: (None, None, None), None, [choice, mos_a, mos_b], api_visibility="private", queue=False)
        with gr.Accordion("Results", open=False):
            results_md = gr.Markdown(label="results")
            with gr.Row():
                refresh = gr.Button("Refresh results")
                export = gr.Button("Export CSV")
            csv_file = gr.File(label="votes.csv", interactive=False)
        refresh.click(self.do_results, session, results_md, api_name="results", concurrency_id="votes")
        export.click(self.do_export, session, csv_file, api_name="export_csv", concurrency_id="votes")
        if self.listening.ready:
            demo.load(friendly(self.do_next_pair), drawn, pair, api_visibility="private")
        demo.load(self.do_results, session, results_md, api_visibility="private")
