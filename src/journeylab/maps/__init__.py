"""Journey maps: the stage × KPI map and its canvas, pain points, journey differences and segments."""

from journeylab.maps.canvas import JourneyCanvasResult, journey_canvas
from journeylab.maps.journey_diff import JourneyDiffResult, compare_journeys, transition_counts
from journeylab.maps.journey_maps import JourneyMapResult, Period, journey_map, resolve_period
from journeylab.maps.pains import PainPointsResult, Step, pain_points, response_speed
from journeylab.maps.segments import (
    PersonasResult,
    SegmentsResult,
    journey_personas,
    segment_users,
    user_features,
)

__all__ = [
    "journey_map",
    "JourneyMapResult",
    "Period",
    "resolve_period",
    "journey_canvas",
    "JourneyCanvasResult",
    "pain_points",
    "PainPointsResult",
    "Step",
    "response_speed",
    "compare_journeys",
    "transition_counts",
    "JourneyDiffResult",
    "user_features",
    "segment_users",
    "journey_personas",
    "SegmentsResult",
    "PersonasResult",
]
